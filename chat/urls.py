from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="chat-home"),
    path("send/", views.send, name="chat-send"),
    path("media/<int:pk>/", views.media, name="chat-media"),
    path("neurons/", views.neurons, name="chat-neurons"),
    path("c/new/", views.new_conversation, name="chat-new"),
    path("c/<int:pk>/", views.conversation_page, name="chat-conversation"),
    path("c/<int:pk>/rename/", views.rename_conversation, name="chat-rename"),
    path("c/<int:pk>/delete/", views.delete_conversation, name="chat-delete"),
    path("c/<int:pk>/m/<int:message>/edit/", views.edit_message, name="chat-edit"),
    path("c/<int:pk>/m/<int:message>/regenerate/", views.regenerate, name="chat-regenerate"),
    path("keys/", views.keys_page, name="chat-keys"),
    path("keys/<int:pk>/revoke/", views.revoke_key, name="chat-revoke-key"),
]
