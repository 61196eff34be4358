from django.contrib import admin

from .models import EndpointConfig, Neuron


@admin.register(Neuron)
class NeuronAdmin(admin.ModelAdmin):
    list_display = ("uid", "hotkey", "axon", "incentive", "trust", "stake", "active", "validator_permit")
    list_filter = ("active", "validator_permit", "netuid")
    search_fields = ("hotkey", "coldkey", "description")


@admin.register(EndpointConfig)
class EndpointConfigAdmin(admin.ModelAdmin):
    list_display = ("__str__", "network", "netuid", "metagraph_source", "rate_limiting_enabled", "updated_at")
