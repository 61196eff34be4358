# Django looks for an app's models in <app>.models; they live in the core.
from endpoint.core.models import EndpointConfig, Neuron, Subnet

__all__ = ["EndpointConfig", "Neuron", "Subnet"]
