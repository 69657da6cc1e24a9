import pytest
import torch

from faster_core.tokenizer.loss import dct, idct
from faster_core.tokenizer.patchify import PatchLayout, patchify, unpatchify
from faster_core.tokenizer.taae import LatentLayout, TAAEDecoder, TAAEEncoder


def autoencode(layout: LatentLayout, latent_dim: int, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    encoder = TAAEEncoder(layout=layout, latent_dim=latent_dim, width=16, heads=2)
    decoder = TAAEDecoder(layout=layout, latent_dim=latent_dim, width=16, heads=2)
    z = encoder(patchify(actions, layout.patches))
    return z, unpatchify(decoder(z), layout.patches)


@pytest.mark.parametrize("per_group", [False, True])
def test_untrained_autoencoder_is_an_exact_dct_codec_when_the_latent_holds_every_coefficient(per_group):
    patches = PatchLayout(32, 4, (6, 1, 6, 1))
    layout = LatentLayout.for_action_tokens(patches, time_tokens=2, action_tokens=4 if per_group else 14)
    latent_dim = 16 * 6 if per_group else 16  # segment length 16 x dimensions per token
    actions = torch.randn(3, 32, 14)
    z, recon = autoencode(layout, latent_dim, actions)
    assert z.shape == (3, 2, layout.action_tokens, latent_dim)
    torch.testing.assert_close(recon, actions, atol=1e-5, rtol=0)


def test_truncated_latent_keeps_the_lowest_dct_frequencies():
    patches = PatchLayout(20, 4, (7, 1))
    layout = LatentLayout.for_action_tokens(patches, time_tokens=1, action_tokens=8)
    actions = torch.randn(2, 20, 8, dtype=torch.float32)
    z, recon = autoencode(layout, 5, actions)
    coefficients = dct(actions, dim=1)
    torch.testing.assert_close(z[:, 0].transpose(1, 2), coefficients[:, :5], atol=1e-5, rtol=0)  # token = dim
    low_pass = idct(torch.cat([coefficients[:, :5], torch.zeros(2, 15, 8)], dim=1), dim=1)
    torch.testing.assert_close(recon, low_pass, atol=1e-5, rtol=0)
    assert (recon - actions).abs().max() > 0.1  # the truncation is real


def test_action_tokens_must_be_dimensions_or_groups():
    patches = PatchLayout(20, 4, (7, 1))
    assert LatentLayout.for_action_tokens(patches, time_tokens=1, action_tokens=2).group_tokens == (1, 1)
    assert LatentLayout.for_action_tokens(patches, time_tokens=1, action_tokens=8).group_tokens == (7, 1)
    with pytest.raises(ValueError, match=r"action_tokens \(C_a\) must be the number of action dimensions \(8\)"):
        LatentLayout.for_action_tokens(patches, time_tokens=1, action_tokens=7)
    with pytest.raises(ValueError, match=r"time_tokens \(C_h\) 2 must divide the 5 time patches"):
        LatentLayout.for_action_tokens(patches, time_tokens=2, action_tokens=8)


def test_gradients_reach_the_learned_path():
    patches = PatchLayout(8, 2, (3, 1))
    layout = LatentLayout.for_action_tokens(patches, time_tokens=2, action_tokens=4)
    encoder = TAAEEncoder(layout=layout, latent_dim=4, width=16, heads=2)
    decoder = TAAEDecoder(layout=layout, latent_dim=4, width=16, heads=2)
    recon = decoder(encoder(patchify(torch.randn(2, 8, 4), patches)))
    recon.pow(2).sum().backward()
    assert decoder.proj.weight.grad.abs().sum() > 0
    assert encoder.skip[0].weight.grad.abs().sum() > 0
