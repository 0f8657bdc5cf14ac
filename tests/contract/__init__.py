"""The service API contract (planqk_service_api) and the parity of its two servers."""
