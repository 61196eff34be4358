from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import ApiKey
        from .services import forget_authenticated_keys

        post_save.connect(forget_authenticated_keys, sender=ApiKey, dispatch_uid="keys-auth-cache-save")
        post_delete.connect(forget_authenticated_keys, sender=ApiKey, dispatch_uid="keys-auth-cache-delete")
