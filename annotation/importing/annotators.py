"""Imported annotators: names checked, kept in their own namespace of accounts.

An annotator named in an import file becomes the inactive account ``imported:<name>``. A colon
cannot appear in a username made by the admin, ``createsuperuser`` or any form (Django's username
validator refuses it), so an import can never attribute labels to a real account, staff or a
member of another project, unless staff imports with ``--map-annotators``.
"""

import re

IMPORTED_PREFIX = "imported:"
_NAME = re.compile(r"[\w.@+-]+")
MAX_NAME_LENGTH = 150 - len(IMPORTED_PREFIX)


def imported_username(name: str) -> str:
    return IMPORTED_PREFIX + name


def annotator_name_problem(name: str) -> str | None:
    """Why a name cannot stand for an annotator, or None when it can."""
    if len(name) > MAX_NAME_LENGTH:
        return f"annotator name is {len(name)} characters; at most {MAX_NAME_LENGTH}"
    if not _NAME.fullmatch(name):
        return f"annotator name {name!r} may hold only letters, digits and . @ + - _"
    return None
