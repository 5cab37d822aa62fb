"""Object-level rules: who may do what in a project. Services call these; views only log in."""

from django.core.exceptions import PermissionDenied

from .models import Membership, Project, ProjectRole


def project_roles(user, project: Project) -> set[str]:
    """The user's roles in the project; staff act as project admins everywhere."""
    if not user.is_authenticated or not user.is_active:
        return set()
    roles = set(Membership.objects.filter(project=project, user=user).values_list("role", flat=True))
    if user.is_staff:
        roles.add(ProjectRole.ADMIN)
    return roles


def require_role(user, project: Project, *roles: str) -> None:
    if not project_roles(user, project) & set(roles):
        wanted = " or ".join(ProjectRole(role).label.lower() for role in roles)
        raise PermissionDenied(f"{user} is not {wanted} in project {project.slug!r}")


def require_admin(user, project: Project) -> None:
    require_role(user, project, ProjectRole.ADMIN)
