from django.apps import AppConfig


class EndpointConfig(AppConfig):
    name = "endpoint"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import config  # noqa: F401  (connects the config-saved signal)
