"""The SQL of the annotator's hot path (pull and submit), written once and run as is.

Each request of the labelling loop runs a handful of these statements; building them with the
ORM took more CPU than running them. They are plain SQL that PostgreSQL and SQLite both run;
row locks (``FOR UPDATE``) are added where the database has them (SQLite serialises writers).
Table and column names are Django's defaults for the models in ``models.py``; the tests of the
workbench run every statement on both databases.
"""

import json

from django.db import connection

from .labels import FINAL_LABEL_SOURCES
from .models import AssignmentStatus

LEASED, SUBMITTED, SKIPPED = (
    AssignmentStatus.LEASED.value,
    AssignmentStatus.SUBMITTED.value,
    AssignmentStatus.SKIPPED.value,
)


def not_final(table: str) -> str:
    """SQL: the final label row ``table`` (outer-joined: it may be NULL) is not a human's or reviewer's."""
    sources = ", ".join(f"'{source.value}'" for source in FINAL_LABEL_SOURCES)
    return f"({table}.prompt_label_source IS NULL OR {table}.prompt_label_source NOT IN ({sources}))"


NOT_FINAL = not_final("f")
HOLDS_SLOT = f"(a.status = '{SUBMITTED}' OR (a.status = '{LEASED}' AND a.lease_expires_at > %(now)s))"

# Open items of the project's active batches this annotator has neither submitted nor skipped,
# counted up to a bound (so that a pull stays fast on a queue of millions): the open items, read
# in index order up to the bound plus the annotator's own finished ones among them, minus those
# (an assignment names one item, so none is subtracted twice). The same number as an anti-join
# per open item, at a fraction of the database's work (no lookup per item). The annotator's
# finished assignments not known to be on a done item are a partial index (item_done, models.py),
# so only those items are looked up, not the annotator's whole history.
OWN_FINISHED_OPEN = f"""
    SELECT COUNT(*) FROM annotation_assignment a
    JOIN annotation_queueitem q ON q.id = a.item_id
    JOIN annotation_assignmentbatch b ON b.id = q.batch_id
    WHERE a.annotator_id = %(user)s AND a.project_id = %(project)s AND a.status IN ('{SUBMITTED}', '{SKIPPED}')
      AND NOT a.item_done AND b.active AND NOT q.done
"""
# In queue order, so that the database walks the open items' index range (queue_item_next) rather
# than scanning the queue past its done items (a plan stale statistics chose, slower as the queue
# got done).
OPEN_ITEMS_UP_TO = """
    SELECT COUNT(*) FROM (
        SELECT 1 FROM annotation_queueitem q
        JOIN annotation_assignmentbatch b ON b.id = q.batch_id
        WHERE b.project_id = %(project)s AND b.active AND q.done = %(false)s
        ORDER BY b.id, q.priority DESC, q.id
        LIMIT %(bound)s + {own}
    ) AS open_items
"""
REMAINING = f"SELECT ({OPEN_ITEMS_UP_TO.format(own=f'({OWN_FINISHED_OPEN})')}) - ({OWN_FINISHED_OPEN})"
# The project's open items, counted up to %(bound)s (selectors.open_items_plenty).
OPEN_ITEMS = OPEN_ITEMS_UP_TO.format(own="0")

# The annotator's membership with its project, their unexpired lease on a sample not final (if
# any), their submissions in all and today (their tally; %(today)s the local date), and their remaining
# items: one statement. PostgreSQL counts the annotator's finished open items once and bounds the
# open items by that count; SQLite, whose LIMIT cannot name an outer column, counts them twice.
MEMBERSHIP = f"""
SELECT m.id, m.project_id, m.user_id, m.role, m.opted_out_categories, m.daily_cap, m.break_reminder_minutes,
    p.name AS project_name, p.slug AS project_slug, p.guidelines AS project_guidelines,
    p.taxonomy_id AS project_taxonomy_id,
    (SELECT a.id FROM annotation_assignment a
        LEFT JOIN annotation_finallabel f ON f.sample_id = a.sample_id
        WHERE a.annotator_id = %(user)s AND a.project_id = %(project)s AND a.status = '{LEASED}'
          AND a.lease_expires_at > %(now)s AND {NOT_FINAL}
        ORDER BY a.leased_at LIMIT 1) AS current_lease,
    COALESCE(t.submitted, 0) AS submitted,
    CASE WHEN t.day = %(today)s THEN t.submitted_on_day ELSE 0 END AS submitted_today,
    {{remaining}} AS remaining
    {{lease_commit}}
FROM annotation_membership m
JOIN annotation_project p ON p.id = m.project_id
LEFT JOIN annotation_annotatortally t ON t.project_id = m.project_id AND t.annotator_id = m.user_id
{{own_finished_open}}
WHERE m.project_id = %(project)s AND m.user_id = %(user)s AND m.role = 'annotator'
"""
OWN_FINISHED_OPEN_ONCE = f"JOIN ({OWN_FINISHED_OPEN}) AS own (n) ON TRUE"
REMAINING_FROM_OWN = f"(({OPEN_ITEMS_UP_TO.format(own='own.n')}) - own.n)"
# With plenty of open items (at least %(plenty)s, counted lately), a lower bound of the remaining
# ones without counting them: plenty less the annotator's finished open items.
PLENTY_LESS_OWN = {"postgresql": "(%(plenty)s - own.n)", "sqlite": f"(%(plenty)s - ({OWN_FINISHED_OPEN}))"}

# A lease needs no durable commit: lost in a database crash (the last ~0.6 s of asynchronous
# commits), it is pulled again, and it would have expired anyway; the annotator's next submission
# commits synchronously and so makes every earlier lease durable too. So on PostgreSQL a pull's
# commit does not wait for the WAL flush (~4 ms a commit on the development machine's disk),
# set by the membership statement itself rather than by one more round trip.
LEASE_COMMIT_NOT_AWAITED = ", set_config('synchronous_commit', 'off', true) AS lease_commit"


def membership_statement(*, in_submission: bool = False, plenty: bool = False) -> str:
    """MEMBERSHIP, its row locked; on PostgreSQL the finished open items are counted once and the
    pull's commit is not awaited (above). ``in_submission``: the pull shares a submission's
    transaction, whose commit must be awaited, and skips the row if another pull holds it.
    ``plenty``: the remaining items as PLENTY_LESS_OWN, not counted."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        statement = MEMBERSHIP.format(
            remaining=PLENTY_LESS_OWN["postgresql"] if plenty else REMAINING_FROM_OWN,
            lease_commit="" if in_submission else LEASE_COMMIT_NOT_AWAITED,
            own_finished_open=OWN_FINISHED_OPEN_ONCE,
        )
    else:
        remaining = PLENTY_LESS_OWN["sqlite"] if plenty else f"({REMAINING})"
        statement = MEMBERSHIP.format(remaining=remaining, lease_commit="", own_finished_open="")
    return lock(statement, "m", skip_locked=in_submission)


# The first item in queue order (batch, priority, id) this annotator may take: in an active
# batch, not done, sample not final, fewer than k places held, not had by this annotator (their
# own expired lease excepted, unless {own_expired} is empty); with what the labelling page shows
# of its sample. Written so that both databases walk the queue_item_next index (batch, done,
# -priority, id) in order and stop at the first match, instead of sorting the queue; whether the
# sample has imported labels is a scalar subquery, looked up (annotation_imported_sample) for the
# item found: as an EXISTS, PostgreSQL may hash the whole label table first, on every pull.
CANDIDATE = f"""
SELECT q.id, q.sample_id, b.annotations_per_sample, s.uid, s.turns, s.response, f.categories,
    COALESCE((SELECT TRUE FROM annotation_annotation i
              WHERE i.sample_id = q.sample_id AND i.import_batch_id IS NOT NULL LIMIT 1), FALSE) AS imported
FROM annotation_queueitem q
JOIN annotation_assignmentbatch b ON b.id = q.batch_id
JOIN annotation_sample s ON s.id = q.sample_id
LEFT JOIN annotation_finallabel f ON f.sample_id = q.sample_id
WHERE b.project_id = %(project)s AND b.active AND q.done = %(false)s AND {NOT_FINAL}
  AND (SELECT COUNT(*) FROM annotation_assignment a WHERE a.item_id = q.id AND {HOLDS_SLOT}) < b.annotations_per_sample
  AND NOT EXISTS (
      SELECT 1 FROM annotation_assignment a
      WHERE a.item_id = q.id AND a.annotator_id = %(user)s {{own_expired}}
  )
  {{opted_out}}
  {{tried}}
ORDER BY b.id, q.priority DESC, q.id
LIMIT 1
"""
OWN_EXPIRED_LEASE_TAKEN_AGAIN = f"AND NOT (a.status = '{LEASED}' AND a.lease_expires_at <= %(now)s)"
OPTED_OUT = (
    "AND NOT EXISTS (SELECT 1 FROM annotation_samplecategory c WHERE c.sample_id = q.sample_id AND c.code IN ({}))"
)

# A lease on the locked item if fewer than k places are held, counted in this statement (it
# starts after the lock is taken, so it sees every committed lease): new, or the annotator's own
# expired lease renewed.
LEASE = f"""
INSERT INTO annotation_assignment
    (item_id, sample_id, project_id, annotator_id, status, leased_at, lease_expires_at, skip_reason, flagged,
     flag_reason)
SELECT %(item)s, %(sample)s, %(project)s, %(user)s, '{LEASED}', %(now)s, %(expires)s, '', %(false)s, ''
WHERE (SELECT COUNT(*) FROM annotation_assignment a WHERE a.item_id = %(item)s AND {HOLDS_SLOT}) < %(k)s
ON CONFLICT (sample_id, annotator_id) DO UPDATE
    SET item_id = excluded.item_id, status = excluded.status,
        leased_at = excluded.leased_at, lease_expires_at = excluded.lease_expires_at
    WHERE annotation_assignment.status = '{LEASED}'
RETURNING id, flagged
"""

# The caller's assignment with what a submission needs: its sample's response, project's taxonomy
# and review threshold, final label source, the batch's k, whether its lease has lapsed, and the caller's own
# annotation of the sample (own_*).
ASSIGNMENT_FOR_SUBMIT = f"""
SELECT a.id, a.item_id, a.sample_id, a.annotator_id, a.status,
    (a.status = '{LEASED}' AND a.lease_expires_at <= %(now)s) AS lapsed,
    s.response IS NOT NULL AS has_response, s.project_id, p.taxonomy_id, p.review_below_agreement,
    f.prompt_label_source AS final_source,
    b.annotations_per_sample AS k,
    o.id AS own_id, o.prompt_label AS own_prompt_label, o.response_label AS own_response_label,
    o.categories AS own_categories, o.other_risks AS own_other_risks, o.comment AS own_comment,
    o.time_spent_ms AS own_time_spent_ms
FROM annotation_assignment a
JOIN annotation_sample s ON s.id = a.sample_id
JOIN annotation_project p ON p.id = s.project_id
JOIN annotation_queueitem q ON q.id = a.item_id
JOIN annotation_assignmentbatch b ON b.id = q.batch_id
LEFT JOIN annotation_finallabel f ON f.sample_id = a.sample_id
LEFT JOIN annotation_annotation o ON o.sample_id = a.sample_id AND o.annotator_id = a.annotator_id
WHERE a.id = %(assignment)s
"""

# The caller's label, new or revised (by id), returning its id; then its audit entry, and the
# categories the sample is now known to touch. On PostgreSQL ``submission_statement`` runs them, and
# the counting below, as one statement (writing WITHs); SQLite runs them one after another.
INSERT_ANNOTATION = """
INSERT INTO annotation_annotation
    (sample_id, annotator_id, prompt_label, response_label, categories, other_risks, comment, time_spent_ms,
     created_at, updated_at)
VALUES (%(sample)s, %(user)s, %(prompt_label)s, %(response_label)s, %(categories)s, %(other_risks)s, %(comment)s,
        %(spent)s, %(now)s, %(now)s)
RETURNING id
"""
UPDATE_ANNOTATION = """
UPDATE annotation_annotation
SET prompt_label = %(prompt_label)s, response_label = %(response_label)s, categories = %(categories)s,
    other_risks = %(other_risks)s, comment = %(comment)s, time_spent_ms = %(spent)s, updated_at = %(now)s
WHERE id = %(own)s
RETURNING id
"""
INSERT_REVISION = """
INSERT INTO annotation_annotationrevision (annotation_id, changed_by_id, changed_at, old, new)
SELECT {annotation}, %(user)s, %(now)s, %(old)s, %(new)s {source}
"""
INSERT_CATEGORIES = """
INSERT INTO annotation_samplecategory (sample_id, code) VALUES {rows} ON CONFLICT DO NOTHING
"""

# The submission counted on its item (done once k are in), atomically: two last submissions of
# an item cannot both miss each other, whatever the isolation level.
COUNT_SUBMISSION = """
UPDATE annotation_queueitem
SET submitted_count = submitted_count + 1, done = (done OR submitted_count + 1 >= %(k)s)
WHERE id = %(item)s
RETURNING submitted_count, done
"""
# The annotator's tally of submissions in the project (models.AnnotatorTally): one more in all,
# and on %(day)s (the local date), the day the tally keeps unless it has a later one already.
TALLY_SUBMISSION = """
INSERT INTO annotation_annotatortally (project_id, annotator_id, submitted, day, submitted_on_day)
VALUES (%(project)s, %(user)s, 1, %(day)s, 1)
ON CONFLICT (project_id, annotator_id) DO UPDATE SET
    submitted = annotation_annotatortally.submitted + 1,
    submitted_on_day = CASE
        WHEN annotation_annotatortally.day = excluded.day THEN annotation_annotatortally.submitted_on_day + 1
        WHEN annotation_annotatortally.day > excluded.day THEN annotation_annotatortally.submitted_on_day
        ELSE 1 END,
    day = CASE WHEN annotation_annotatortally.day > excluded.day THEN annotation_annotatortally.day
               ELSE excluded.day END
"""
MARK_SUBMITTED = f"""
UPDATE annotation_assignment SET status = '{SUBMITTED}', submitted_at = %(now)s{{item_done}} WHERE id = %(assignment)s
"""
# Once an item is done, its assignments say so (they leave the partial index of finished open
# ones). On PostgreSQL, within the submission's statement, rows another transaction holds are
# left as they are rather than waited for (that one may be waiting for this item): such a flag
# only costs the remaining count one lookup.
ITEM_DONE = "UPDATE annotation_assignment SET item_done = TRUE WHERE item_id = %(item)s AND NOT item_done"
OTHERS_ITEM_DONE = """
UPDATE annotation_assignment SET item_done = TRUE
WHERE id IN (SELECT id FROM annotation_assignment
             WHERE item_id = %(item)s AND id <> %(assignment)s AND NOT item_done FOR UPDATE SKIP LOCKED)
  AND (SELECT done FROM counted)
"""


# Deciding a sample's final label once its k annotations are in: whether a human or reviewer
# decided it already, with the annotators' labels (imported ones aside), in one statement; then
# the final label written as one upsert. It replaces an imported or a jury's final label (its
# refusal label stays), never one a human or reviewer decided (checked on the row as it is when written, so a reviewer's
# decision committed meanwhile stands); it returns a row only when it wrote.
FINAL_SOURCE_AND_VOTES = """
SELECT f.prompt_label_source, a.id, a.prompt_label, a.response_label, a.categories
FROM annotation_sample s
LEFT JOIN annotation_finallabel f ON f.sample_id = s.id
LEFT JOIN annotation_annotation a ON a.sample_id = s.id AND a.import_batch_id IS NULL
WHERE s.id = %(sample)s
"""
FINAL_LABEL_UPSERT = f"""
INSERT INTO annotation_finallabel
    (sample_id, prompt_label, prompt_label_source, response_label, response_label_source, categories,
     decided_by_id, import_batch_id, updated_at)
{{rows}}
ON CONFLICT (sample_id) DO UPDATE SET
    prompt_label = excluded.prompt_label, prompt_label_source = excluded.prompt_label_source,
    response_label = excluded.response_label, response_label_source = excluded.response_label_source,
    categories = excluded.categories, decided_by_id = NULL, import_batch_id = NULL, updated_at = excluded.updated_at
    WHERE {not_final("annotation_finallabel")}
RETURNING 1
"""
FINAL_LABEL_ROW = """%(sample)s, %(final_prompt_label)s, %(final_prompt_label_source)s, %(final_response_label)s,
    %(final_response_label_source)s, %(final_categories)s, NULL, NULL, %(now)s"""
UPSERT_FINAL_LABEL = FINAL_LABEL_UPSERT.format(rows=f"VALUES ({FINAL_LABEL_ROW})")

# A submission that completes an item of k = 1: the final label its vote alone decides (computed
# before the statement, adjudication.decide_final_label), written within the statement if the
# item counts this one submission and the sample has no other annotator's label (imported ones
# aside). Otherwise (another batch's label of the sample) the votes are read as with k > 1.
SINGLE_VOTE_FINAL = FINAL_LABEL_UPSERT.format(
    rows=f"""SELECT {FINAL_LABEL_ROW}
WHERE (SELECT submitted_count FROM counted) = 1 AND NOT EXISTS (
    SELECT 1 FROM annotation_annotation v
    WHERE v.sample_id = %(sample)s AND v.import_batch_id IS NULL AND v.annotator_id <> %(user)s)"""
)


def category_rows(count: int) -> str:
    """The VALUES of INSERT_CATEGORIES for ``count`` codes (parameters sample, code0, code1, ...)."""
    return ", ".join(f"(%(sample)s, %(code{i})s)" for i in range(count))


# With the k-th submission of an item, the sample's labels (imported ones aside; whether each is
# the caller's, whose new labels the statement writes) as the submission's statement sees them, and
# how many of the item's other submissions it sees. Each submission writes its label and its count
# in one transaction, so if it sees the item's count less this one, it missed no concurrent one
# and the labels need not be read again once the item is locked. Subqueries in a CASE run only
# where it takes their branch.
VOTES_SEEN = f"""
CASE WHEN (SELECT submitted_count FROM counted) >= %(k)s THEN (
    SELECT COUNT(*) FROM annotation_assignment o
    WHERE o.item_id = %(item)s AND o.status = '{SUBMITTED}' AND o.id <> %(assignment)s
) END,
CASE WHEN (SELECT submitted_count FROM counted) >= %(k)s THEN (
    SELECT json_agg(json_build_array(v.annotator_id = %(user)s, v.prompt_label, v.response_label, v.categories)
                    ORDER BY v.id)
    FROM annotation_annotation v WHERE v.sample_id = %(sample)s AND v.import_batch_id IS NULL
) END
"""


def submission_statement(*, new: bool, categories: int, count: bool, single_vote_final: bool = False) -> str:
    """PostgreSQL: the label, its audit entry, its categories and (``count``) the assignment marked
    submitted, counted on its item (its assignments told once it is done) and on the annotator's
    tally, and (``single_vote_final``, with ``count``) SINGLE_VOTE_FINAL, in one statement;
    returns (annotation id, item's count, and with the k-th submission VOTES_SEEN, whether
    SINGLE_VOTE_FINAL wrote)."""
    parts = [
        f"saved AS ({INSERT_ANNOTATION if new else UPDATE_ANNOTATION})",
        f"revision AS ({INSERT_REVISION.format(annotation='id', source='FROM saved')})",
    ]
    if categories:
        parts.append(f"known AS ({INSERT_CATEGORIES.format(rows=category_rows(categories))})")
    if count:
        parts += [
            f"counted AS ({COUNT_SUBMISSION})",
            f"submitted AS ({MARK_SUBMITTED.format(item_done=', item_done = (SELECT done FROM counted)')})",
            f"finished AS ({OTHERS_ITEM_DONE})",
            f"tallied AS ({TALLY_SUBMISSION})",
        ]
    if single_vote_final:
        parts.append(f"decided AS ({SINGLE_VOTE_FINAL})")
    counted = f"(SELECT submitted_count FROM counted), {VOTES_SEEN}" if count else "NULL, NULL, NULL"
    decided = "(SELECT COUNT(*) FROM decided)" if single_vote_final else "0"
    return f"WITH {', '.join(parts)} SELECT (SELECT id FROM saved), {counted}, {decided}"


def lock(sql: str, table: str, *, skip_locked: bool = False) -> str:
    """The statement with ``FOR UPDATE OF table`` where the database has row locks."""
    if not connection.features.has_select_for_update:
        return sql
    return f"{sql} FOR UPDATE OF {table}" + (" SKIP LOCKED" if skip_locked else "")


def fetch_one(sql: str, params: dict) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def when(value):
    """A datetime as the database takes it in a raw statement."""
    return connection.ops.adapt_datetimefield_value(value)


def day(value):
    """A date as the database takes it in a raw statement."""
    return connection.ops.adapt_datefield_value(value)


def json_param(value):
    """A value for a JSON column in a raw statement (None stays SQL NULL)."""
    return None if value is None else connection.ops.adapt_json_value(value, None)


def json_value(value):
    """A JSON column read by a raw statement (text on SQLite and with Django's psycopg set-up)."""
    return json.loads(value) if isinstance(value, str | bytes) else value
