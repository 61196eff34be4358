import threading

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.core.signals import request_finished
from django.db import connections
from django.db.models.signals import post_delete, post_save, pre_save


def close_page_connections(**kwargs) -> None:
    """Pages (admin, accounts, chat) run their sync code under ASGI on a thread
    made for the request; a persistent connection left there would outlive
    the thread, open, until garbage collection. The gateway's DB threads
    (endpoint/core/db.py) keep theirs: they send no request signals."""
    if threading.current_thread().name.startswith("db"):
        return
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:  # a test's transaction, or a caller's
            connection.close()


class EndpointConfig(AppConfig):
    default = True
    name = "endpoint"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from endpoint.core import deploy_checks  # noqa: F401  (registers the checks of check --deploy)
        from endpoint.core.config import config_saved, forget_runtime_config
        from endpoint.core.encryption import reencrypt_on_save
        from endpoint.core.invalidation import on_change
        from endpoint.core.subnets import config_saved_mirror, forget_served_subnets, subnet_saved

        request_finished.connect(close_page_connections, dispatch_uid="endpoint.close_page_connections")
        # A config save: its secrets re-encrypted with the current key before,
        # this process's snapshot of the config dropped after.
        config = self.get_model("EndpointConfig")
        pre_save.connect(reencrypt_on_save, sender=config, dispatch_uid="endpoint.reencrypt_on_save")
        post_save.connect(config_saved, sender=config, dispatch_uid="endpoint.config_saved")
        # The chat subnet's settings are the config's: every save copies them over.
        post_save.connect(config_saved_mirror, sender=config, dispatch_uid="endpoint.chat_subnet_mirror")
        on_change("config", forget_runtime_config)
        subnet = self.get_model("Subnet")
        post_save.connect(subnet_saved, sender=subnet, dispatch_uid="endpoint.subnet_saved")
        post_delete.connect(subnet_saved, sender=subnet, dispatch_uid="endpoint.subnet_deleted")
        on_change("subnet", forget_served_subnets)


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin as the operator's console: its own name, and without the
    models nobody manages there (tokens come from `drf_create_token`, OAuth
    apps from the environment)."""

    default = False  # named in INSTALLED_APPS; EndpointConfig stays this module's default

    def ready(self) -> None:
        super().ready()  # registers every app's admin
        from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
        from django.contrib import admin
        from rest_framework.authtoken.models import TokenProxy

        admin.site.site_header = admin.site.site_title = "Validator Endpoint"
        admin.site.index_title = "Operator's console"
        # Its 300 px would leave a laptop's lists too narrow; the index and the breadcrumbs lead everywhere.
        admin.site.enable_nav_sidebar = False
        for model in (SocialApp, SocialAccount, SocialToken, TokenProxy):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
