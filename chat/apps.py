from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        from .services import grant_on_signup

        # The sign-up grant lands at sign-up (email or Google/GitHub), not at the first chat.
        user_signed_up.connect(grant_on_signup, dispatch_uid="chat-grant-on-signup")
