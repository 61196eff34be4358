from django.contrib import admin
from django.urls import path

from endpoint.api import chat, health

urlpatterns = [
    path("chat", chat.ChatView.as_view(), name="chat"),
    path("health/live", health.live, name="health-live"),
    path("admin/", admin.site.urls),
]
