from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("services", "0003_service_publish_on_ready"),
    ]

    operations = [
        migrations.AddField(
            model_name="service",
            name="skip_example_run",
            field=models.BooleanField(
                default=False,
                help_text="Builds check that the code imports but do not run the API spec's example input "
                "(for services that need hardware tokens).",
            ),
        ),
    ]
