"""Guard runners: one interface (``base.GuardRunner``) for every way of asking a guard, shared by
evaluation runs, the online ensemble and anything else that asks guards."""
