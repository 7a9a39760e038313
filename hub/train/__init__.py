"""The one fine-tuning loop shared by every plugin and modality.

A plugin supplies a :class:`hub.train.adapter.TrainAdapter` through the ``trainable`` hook
(module, collate, loss, predict, save); the loop supplies everything else: optimiser and
schedules, precision through the device manager, evaluation, checkpoints, logging, plots,
and torch.distributed. Torch is imported only inside the functions that need it.
"""
