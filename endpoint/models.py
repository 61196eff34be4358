# Django looks for an app's models in <app>.models; they live in the core.
from endpoint.core.models import EndpointConfig, Neuron

__all__ = ["EndpointConfig", "Neuron"]
