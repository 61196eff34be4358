from django.contrib import admin
from django.urls import path

from endpoint.api import health

urlpatterns = [
    path("health/live", health.live, name="health-live"),
    path("admin/", admin.site.urls),
]
