"""Pages for people: annotator, reviewer and admin dashboards."""
