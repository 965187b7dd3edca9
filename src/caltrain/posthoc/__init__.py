"""Post-hoc calibrators fitted on cached logits: ``fit(logits, labels)``, ``predict_proba``, ``transform``."""

__all__: list[str] = []
