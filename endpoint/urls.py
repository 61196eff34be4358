from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.urls import pages as billing_pages
from billing.urls import webhooks as billing_webhooks
from endpoint.api import chat, completions, health, media
from endpoint.metrics import metrics_view

# Unknown URLs under /v1/, /chat and /api/ answer JSON (endpoint.api.errors).
handler404 = "endpoint.api.errors.not_found"
handler500 = "endpoint.api.errors.server_error"

urlpatterns = [
    path("chat", chat.ChatView.as_view(), name="chat"),
    path("v1/chat/completions", completions.ChatCompletionsView.as_view(), name="chat-completions"),
    path("v1/models", completions.ModelsView.as_view(), name="models"),
    path("v1/models/<path:model>", completions.ModelView.as_view(), name="model"),
    path("v1/embeddings", media.EmbeddingsView.as_view(), name="embeddings"),
    path("v1/images/generations", media.ImagesView.as_view(), name="images"),
    path("v1/audio/speech", media.SpeechView.as_view(), name="speech"),
    path("v1/audio/transcriptions", media.TranscriptionsView.as_view(), name="transcriptions"),
    path("v1/media/<uuid:media_id>", media.MediaFileView.as_view(), name="media-file"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The management REST API: /api/admin/… (staff) and /api/keys/ (a user's own keys).
    path("api/", include("endpoint.api.manage.urls")),
    # Browser pages: accounts, the chat and the user's own keys.
    path("accounts/", include("allauth.urls")),
    path("app/", include("chat.urls")),
    path("app/", include(billing_pages)),
    path("billing/", include(billing_webhooks)),
    path("", RedirectView.as_view(pattern_name="chat-home"), name="home"),
    path("keys/", RedirectView.as_view(pattern_name="chat-keys")),
]
