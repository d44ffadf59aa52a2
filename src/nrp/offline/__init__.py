"""Real models and photos that install from package registries: the offline benchmark's data."""

from nrp.offline.recipe import OfflineLayout, check_no_overlap, default_cache, foolbox_photos, prepare_offline

__all__ = ["OfflineLayout", "check_no_overlap", "default_cache", "foolbox_photos", "prepare_offline"]
