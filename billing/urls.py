from django.urls import path

from . import views

# Mounted under /app/ (pages) and /billing/ (Stripe's webhook) by endpoint.urls.
pages = [
    path("billing/", views.billing_page, name="billing"),
    path("billing/pay/", views.pay, name="billing-pay"),
    path("billing/payments/<int:pk>/", views.payment_status, name="billing-payment"),
]
webhooks = [path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook")]
