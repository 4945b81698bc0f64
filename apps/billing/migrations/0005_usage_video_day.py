"""The video's day on every ledger entry (``UsageEntry.video_day``), filled in for the rows there are.

Added nullable and filled in batches of ``BATCH`` entries, each one UPDATE from its generations'
``created_at`` (the day in ``TIME_ZONE``, as ``ledger.video_day`` writes it), so a large ledger is
not rewritten in one statement; 0006 makes it NOT NULL. The reverse drops the column (nothing to
undo in the data)."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import TruncDate

BATCH = 5000


def fill_video_day(apps, schema_editor):
    UsageEntry = apps.get_model("billing", "UsageEntry")
    Generation = apps.get_model("generations", "Generation")
    day = Subquery(
        Generation.objects.filter(pk=OuterRef("generation_id")).annotate(day=TruncDate("created_at")).values("day")[:1]
    )
    entries = UsageEntry.objects.using(schema_editor.connection.alias)
    last = 0
    while True:
        ids = list(
            entries.filter(pk__gt=last, video_day__isnull=True).order_by("pk").values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        entries.filter(pk__in=ids).update(video_day=day)
        last = ids[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_perf_indexes"),
        ("generations", "0010_perf_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="usageentry",
            name="video_day",
            field=models.DateField(
                null=True, help_text="The day (TIME_ZONE) its video was created: the usage report's day"
            ),
        ),
        migrations.RunPython(fill_video_day, migrations.RunPython.noop, elidable=True),
    ]
