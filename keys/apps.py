from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from endpoint.core.invalidation import on_change

        from .models import ApiKey
        from .services import forget_authenticated_keys, key_changed

        on_change("key", forget_authenticated_keys)
        post_save.connect(key_changed, sender=ApiKey, dispatch_uid="keys-changed-save")
        post_delete.connect(key_changed, sender=ApiKey, dispatch_uid="keys-changed-delete")
