"""UsageEntry moves here from apps.generations: state only (the table keeps its name, no data moves).

The matching ``generations.0003_move_usageentry_to_billing`` removes it from the generations state.
The content type is renamed too, so permissions granted on the ledger (and admin history) follow it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def rename_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="billing", model="usageentry").exists():
        ContentType.objects.using(db).filter(app_label="generations", model="usageentry").update(app_label="billing")


def restore_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="generations", model="usageentry").exists():
        ContentType.objects.using(db).filter(app_label="billing", model="usageentry").update(app_label="generations")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("generations", "0002_provider_job_data"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="UsageEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        (
                            "kind",
                            models.CharField(
                                choices=[("hold", "Hold"), ("release", "Release"), ("charge", "Charge"), ("refund", "Refund")],
                                max_length=10,
                            ),
                        ),
                        ("amount", models.DecimalField(decimal_places=4, max_digits=12)),
                        ("provider", models.CharField(max_length=20)),
                        ("model", models.CharField(max_length=60)),
                        ("seconds", models.PositiveIntegerField()),
                        ("price_version", models.CharField(blank=True, max_length=60)),
                        ("period", models.DateField(help_text="First day of the month this entry counts in")),
                        ("note", models.CharField(blank=True, max_length=300)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "generation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="usage_entries",
                                to="generations.generation",
                            ),
                        ),
                        (
                            "organization",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="usage_entries",
                                to="accounts.organization",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="usage_entries",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "generations_usageentry",
                        "ordering": ["created_at", "id"],
                        "indexes": [
                            models.Index(fields=["organization", "period"], name="usage_org_period"),
                            models.Index(fields=["organization", "user", "period"], name="usage_org_user_period"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("kind__in", ["hold", "release", "charge"])),
                                fields=("generation", "kind"),
                                name="one_ledger_entry_per_kind",
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(rename_content_type, restore_content_type, elidable=True),
    ]
