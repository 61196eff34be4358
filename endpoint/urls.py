from django.contrib import admin
from django.urls import path

from endpoint.api import chat, completions, health

urlpatterns = [
    path("chat", chat.ChatView.as_view(), name="chat"),
    path("v1/chat/completions", completions.ChatCompletionsView.as_view(), name="chat-completions"),
    path("v1/models", completions.ModelsView.as_view(), name="models"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("admin/", admin.site.urls),
]
