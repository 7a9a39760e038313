"""The (group) beam-search bookkeeping open_clip's CoCa decoding calls, for transformers releases without it.

open_clip's ``CoCa.generate`` imports ``BeamSearchScorer`` from transformers; transformers 5 no longer has that
class, and open_clip then turns all of its generation off. :func:`enable_coca_generation` puts generation
back: the logits warpers open_clip names still exist in transformers and are handed back to it, and
:class:`BeamSearchScorer` below keeps the beams the way open_clip's loop expects (the same interface and
rules: finished hypotheses ranked by ``sum of log-probabilities / length ** length_penalty``, a group of
beams done once no running beam can beat its worst kept hypothesis). Only the missing pieces are given;
open_clip's own decoding loop, logits processors and stopping criteria run unchanged.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()


def enable_coca_generation() -> None:
    """Make open_clip's ``CoCa.generate`` usable when it turned generation off only for want of BeamSearchScorer."""
    import open_clip.coca_model as coca

    if getattr(coca, "_has_transformers", False):
        return
    with _lock:
        if coca._has_transformers:
            return
        import transformers

        coca.GENERATION_TYPES = {"top_k": transformers.TopKLogitsWarper, "top_p": transformers.TopPLogitsWarper,
                                 "beam_search": "beam_search"}
        for name in ("LogitsProcessorList", "TopPLogitsWarper", "TopKLogitsWarper", "RepetitionPenaltyLogitsProcessor",
                     "MinLengthLogitsProcessor", "MaxLengthCriteria", "StoppingCriteriaList"):
            if not hasattr(coca, name):
                setattr(coca, name, getattr(transformers, name))
        if not hasattr(coca, "BeamSearchScorer"):
            coca.BeamSearchScorer = BeamSearchScorer
        coca._has_transformers = True


class Hypotheses:
    """The best finished sequences of one group of beams for one input."""

    def __init__(self, size: int, length_penalty: float, early_stopping: bool):
        self.size, self.length_penalty, self.early_stopping = size, length_penalty, early_stopping
        self.beams: list[tuple[float, object]] = []
        self.worst_score = 1e9

    def __len__(self) -> int:
        return len(self.beams)

    def add(self, tokens, sum_logprobs: float, length: int) -> None:
        """Keep ``tokens`` if it is among the ``size`` best so far (its score normalised by its length)."""
        score = sum_logprobs / (length ** self.length_penalty)
        if len(self.beams) < self.size or score > self.worst_score:
            self.beams.append((score, tokens))
            if len(self.beams) > self.size:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, length: int) -> bool:
        """Full, and no running beam (best ``best_sum_logprobs`` at ``length``) can beat the worst one kept."""
        if len(self.beams) < self.size:
            return False
        if self.early_stopping:
            return True
        return self.worst_score >= best_sum_logprobs / (length ** self.length_penalty)


class BeamSearchScorer:
    """Beams of ``batch_size`` inputs in ``num_beam_groups`` groups of ``num_beams // num_beam_groups``."""

    def __init__(self, batch_size: int, num_beams: int, device=None, num_beam_groups: int = 1,
                 length_penalty: float = 1.0, do_early_stopping: bool = False, num_beam_hyps_to_keep: int = 1,
                 max_length: int | None = None):
        import torch

        if num_beams < 2 or num_beam_groups < 1 or num_beams % num_beam_groups:
            raise ValueError(f"num_beams ({num_beams}) must be at least 2 and divisible by num_beam_groups "
                             f"({num_beam_groups})")
        self.num_beams, self.num_beam_groups, self.device = num_beams, num_beam_groups, device
        self.group_size = num_beams // num_beam_groups
        self.keep = num_beam_hyps_to_keep
        self._beam_hyps = [Hypotheses(self.group_size, length_penalty, do_early_stopping)
                           for _ in range(batch_size * num_beam_groups)]
        self._done = torch.zeros(batch_size * num_beam_groups, dtype=torch.bool, device=device)

    @property
    def is_done(self) -> bool:
        return bool(self._done.all())

    def process(self, input_ids, next_scores, next_tokens, next_indices, pad_token_id=None, eos_token_id=None,
                beam_indices=None, group_index: int = 0, decoder_prompt_len: int = 0) -> dict:
        """The next beams of one group from its 2 x group-size best candidates; finished ones kept aside."""
        import torch

        eos = _ids(eos_token_id)
        length = input_ids.shape[-1] + 1 - decoder_prompt_len
        batch_size = len(self._beam_hyps) // self.num_beam_groups
        size = self.group_size
        scores = torch.zeros((batch_size, size), dtype=next_scores.dtype, device=input_ids.device)
        tokens = torch.zeros((batch_size, size), dtype=next_tokens.dtype, device=input_ids.device)
        indices = torch.zeros((batch_size, size), dtype=next_indices.dtype, device=input_ids.device)
        for batch in range(batch_size):
            slot = batch * self.num_beam_groups + group_index
            if self._done[slot]:
                tokens[batch, :] = pad_token_id if pad_token_id is not None else 0
                continue
            filled = 0
            for rank, (token, score, index) in enumerate(zip(next_tokens[batch], next_scores[batch],
                                                            next_indices[batch])):
                row = batch * size + int(index)
                if int(token) in eos:
                    if rank < size:  # a finished beam counts only if it is among the group's best
                        self._beam_hyps[slot].add(input_ids[row].clone(), float(score), length)
                    continue
                scores[batch, filled], tokens[batch, filled], indices[batch, filled] = score, token, row
                filled += 1
                if filled == size:
                    break
            if filled < size:
                raise ValueError(f"only {filled} of {size} beams could continue: ask for more candidates per step")
            best = float(next_scores[batch].max())
            self._done[slot] = bool(self._done[slot]) or self._beam_hyps[slot].is_done(best, length)
        return {"next_beam_scores": scores.view(-1), "next_beam_tokens": tokens.view(-1),
                "next_beam_indices": indices.view(-1)}

    def finalize(self, input_ids, final_beam_scores, final_beam_tokens, final_beam_indices, max_length: int,
                 pad_token_id=None, eos_token_id=None, beam_indices=None, decoder_prompt_len: int = 0) -> dict:
        """The best sequence of each input (running beams count as finished), padded, ended by the end token."""
        import torch

        eos = _ids(eos_token_id)
        size = self.group_size
        for slot, hyps in enumerate(self._beam_hyps):
            if self._done[slot]:
                continue
            for offset in range(size):
                row = slot * size + offset
                hyps.add(input_ids[row], float(final_beam_scores[row]), input_ids.shape[-1] - decoder_prompt_len)
        batch_size = len(self._beam_hyps) // self.num_beam_groups
        best, best_scores = [], []
        for batch in range(batch_size):
            groups = self._beam_hyps[batch * self.num_beam_groups:(batch + 1) * self.num_beam_groups]
            ranked = sorted((beam for hyps in groups for beam in hyps.beams), key=lambda beam: beam[0])
            for _ in range(self.keep):
                score, tokens = ranked.pop()
                best.append(tokens)
                best_scores.append(score)
        lengths = [len(tokens) for tokens in best]
        width = min(max(lengths) + 1, max_length) if max_length is not None else max(lengths) + 1
        out = input_ids.new_full((len(best), width), pad_token_id if pad_token_id is not None else 0)
        for i, tokens in enumerate(best):
            out[i, :lengths[i]] = tokens
            if lengths[i] < width and eos:
                out[i, lengths[i]] = eos[0]
        return {"sequences": out, "sequence_scores": torch.tensor(best_scores, device=input_ids.device),
                "beam_indices": None}


def _ids(value) -> list[int]:
    """End-token ids as a list of ints (open_clip passes a tensor)."""
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
