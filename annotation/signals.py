"""Signals other apps listen to, so that annotation depends on none of them."""

from django.dispatch import Signal

# Sent after the transaction that gave a sample a human or adjudicated final label commits.
# Arguments: sample_id, project_id. The online moderation app feeds such labels back to its ensembles.
final_label_decided = Signal()
