"""Measuring models on the user's own hardware: ``hub bench`` (:mod:`hub.measure.runner`), its sample
inputs (:mod:`hub.measure.samples`) and peak memory (:mod:`hub.measure.memory`). Cheap to import."""
