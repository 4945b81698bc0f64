"""What the usage report counts, as columns it reads from one covering index.

``provider_cost`` is ``provider_usage["cost_usd"]`` as a number (``models.reported_cost``, the
function the engine writes it with: a pure parser, imported rather than copied so that old rows
and new ones are read alike); ``output_probed`` and ``output_flagged`` say whether ``media_probe``
and ``output_mismatch`` are non-empty. The rows there are get them in batches of ``BATCH``:
the flags by two UPDATEs per batch, the cost parsed in Python (a supplier's value may be a string,
a number or garbage). 0012 then replaces ``gen_org_created_cover`` with ``gen_org_usage_cover``
(PostgreSQL builds no index on a table with the batches' trigger events pending in the same
transaction). The reverse drops the columns (nothing to undo in the data)."""

from django.db import migrations, models

from apps.generations.models import reported_cost

BATCH = 5000


def fill_usage_columns(apps, schema_editor):
    Generation = apps.get_model("generations", "Generation")
    gens = Generation.objects.using(schema_editor.connection.alias)
    last = 0
    while True:
        ids = list(gens.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        batch = gens.filter(pk__in=ids)
        batch.exclude(media_probe={}).update(output_probed=True)
        batch.exclude(output_mismatch=[]).update(output_flagged=True)
        costs = [
            Generation(pk=pk, provider_cost=cost)
            for pk, usage in batch.exclude(provider_usage={}).values_list("pk", "provider_usage")
            if (cost := reported_cost(usage)) is not None
        ]
        gens.bulk_update(costs, ["provider_cost"])
        last = ids[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0010_perf_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="provider_cost",
            field=models.DecimalField(blank=True, decimal_places=6, editable=False, max_digits=14, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="output_probed",
            field=models.BooleanField(default=False, db_default=False, editable=False),
        ),
        migrations.AddField(
            model_name="generation",
            name="output_flagged",
            field=models.BooleanField(default=False, db_default=False, editable=False),
        ),
        migrations.RunPython(fill_usage_columns, migrations.RunPython.noop, elidable=True),
    ]
