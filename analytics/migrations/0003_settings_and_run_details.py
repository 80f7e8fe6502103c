from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="pipelinerun",
            name="details",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Scoring cut-offs and the time each phase took",
            ),
        ),
        migrations.CreateModel(
            name="AnalyticsSettings",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "clv_discount_rate",
                    models.DecimalField(
                        decimal_places=4,
                        default=Decimal("0.1000"),
                        help_text="Annual discount rate for the 12-month CLV, e.g. 0.10 for 10%",
                        max_digits=5,
                        validators=[
                            django.core.validators.MinValueValidator(0),
                            django.core.validators.MaxValueValidator(1),
                        ],
                    ),
                ),
                (
                    "churn_high_below",
                    models.FloatField(
                        default=0.3,
                        help_text="Probability alive below which a customer is at high churn risk",
                        validators=[
                            django.core.validators.MinValueValidator(0),
                            django.core.validators.MaxValueValidator(1),
                        ],
                    ),
                ),
                (
                    "churn_medium_below",
                    models.FloatField(
                        default=0.7,
                        help_text="Probability alive below which a customer is at medium churn risk",
                        validators=[
                            django.core.validators.MinValueValidator(0),
                            django.core.validators.MaxValueValidator(1),
                        ],
                    ),
                ),
                (
                    "lapsed_after_days",
                    models.PositiveIntegerField(
                        default=180,
                        help_text="Days without a purchase after which a customer counts as lapsed",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "members_per_chunk",
                    models.PositiveIntegerField(
                        default=50000,
                        help_text="Member ids per pipeline task; smaller chunks spread over more workers",
                        validators=[django.core.validators.MinValueValidator(100)],
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "analytics settings",
                "verbose_name_plural": "analytics settings",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="analytics_settings_singleton"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("churn_high_below__lte", models.F("churn_medium_below"))
                        ),
                        name="analytics_churn_thresholds_ordered",
                    ),
                ],
            },
        ),
    ]
