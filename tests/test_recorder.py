"""The one dispatch recorder that the metrics hook, both calibrations and the analysis
probe share: what it sees of each network call agrees with the network's own outputs."""
import pytest
import torch
from test_capacity import MODELS
from test_deploy import images

from dyt_mm import dyt_mode
from dyt_mm.models.dyt.dispatcher import threshold_logit
from dyt_mm.models.dyt.recorder import DispatchRecorder

pytestmark = pytest.mark.usefixtures('single_thread')


class Backbone(torch.nn.Module):
    """A module that calls the network, as a toolbox backbone does."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x)


@pytest.mark.parametrize('name', ['attn_mlp', 'tome', 'swin'])
def test_each_call_records_masks_gate_logits_and_kept_counts_that_agree(name):
    network = MODELS[name]()
    backbone = Backbone(network)
    x = images(3)
    recorder = DispatchRecorder(network, masks=True, gate_logits=True, site_kept=True,
                                inputs_of=backbone, keep_inputs=True)
    with recorder, torch.no_grad():
        with dyt_mode(network, 'sparse'):
            out = backbone(x)
        with dyt_mode(network, 'complete'):
            backbone(x[:2])
    dispatched, complete = recorder.pop()
    assert recorder.calls == [] and dispatched.mode == 'sparse' and complete.mode == 'complete'

    assert torch.equal(dispatched.masks, out.masks)
    assert torch.equal(dispatched.kept, out.masks.sum(dim=-1))
    assert torch.equal(dispatched.site_tokens, network.site_tokens(out.masks.shape[-1]))
    assert dispatched.batch_size == 3 and torch.equal(dispatched.inputs, x)
    num_prefix = getattr(network, 'num_prefix', 0)
    for site, (logits, kept, dispatcher) in enumerate(zip(
            dispatched.gate_logits, dispatched.site_kept, recorder.dispatchers)):
        # a gate logit stands for this many tokens of the masks' grid (Swin's coarse stages)
        area = dispatched.site_tokens[site] // logits.shape[-1]
        # the eval rule on the recorded logits gives the recorded decisions
        cut = dispatcher.threshold_offset + threshold_logit(dispatcher.threshold)
        assert torch.equal((logits > cut).sum(dim=-1) * area, dispatched.kept[:, site])
        # the dispatcher's own count holds the same tokens, and the always-kept prefix
        assert torch.equal((kept - num_prefix) * area, dispatched.kept[:, site])
        assert 0 < kept.sum() < len(x) * logits.shape[-1] + num_prefix * len(x)

    # the complete pass runs no dispatcher: every token counts as kept, nothing else is seen
    assert complete.gate_logits is None and complete.site_kept is None
    assert torch.equal(complete.keep_rates, torch.ones(2, len(network.sites),
                                                       dtype=torch.float64))


def test_a_stopped_recorder_records_nothing_and_gates_need_gated_dispatchers():
    network = MODELS['attn_mlp']()
    recorder = DispatchRecorder(network)
    with recorder, torch.no_grad():
        network(images(2))
    with torch.no_grad():
        network(images(2))
    assert len(recorder.calls) == 1 and recorder.calls[0].masks is None
    with pytest.raises(ValueError, match='gated dispatchers; RandomDispatcher has no gate'):
        DispatchRecorder(MODELS['random'](), gate_logits=True)
    with pytest.raises(ValueError, match='keep_inputs needs inputs_of'):
        DispatchRecorder(network, keep_inputs=True)
