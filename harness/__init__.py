"""Quality harness for customer-service chatbots."""

__version__ = "0.1.0"
