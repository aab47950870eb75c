"""The classifier: labellers, the EfficientNet-Lite0 network, the taxonomy. The only torch users;
imports record and settings, nothing above them."""
