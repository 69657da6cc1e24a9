import pytest
import torch

from faster_core.tokenizer.patchify import PatchLayout, patchify, unpatchify


@pytest.mark.parametrize(
    ("length", "patch", "groups"),
    [(20, 4, (7, 1)), (32, 4, (6, 1, 6, 1)), (32, 4, (6, 1, 6, 1, 4, 3)), (6, 3, (2,)), (5, 1, (1, 2, 3))],
)
def test_unpatchify_inverts_patchify(length, patch, groups):
    layout = PatchLayout(length, patch, groups)
    actions = torch.randn(3, length, sum(groups))
    patches = patchify(actions, layout)
    assert patches.shape == (3, layout.num_patches, layout.patch_dim)
    assert torch.equal(unpatchify(patches, layout), actions)


def test_patch_holds_one_group_over_h_steps_zero_padded():
    layout = PatchLayout(8, 2, (3, 1))  # m = 4 time patches, n = 2 groups, width 3
    actions = torch.arange(8 * 4, dtype=torch.float32).view(1, 8, 4) + 1
    patches = patchify(actions, layout)
    # patch index = time_patch * n + group; patch = (h steps) x (width) row-major
    arm_t1 = patches[0, 1 * 2 + 0].view(2, 3)
    assert torch.equal(arm_t1, actions[0, 2:4, 0:3])
    gripper_t3 = patches[0, 3 * 2 + 1].view(2, 3)
    assert torch.equal(gripper_t3[:, 0], actions[0, 6:8, 3])
    assert torch.equal(gripper_t3[:, 1:], torch.zeros(2, 2))


def test_layout_rejects_bad_sizes():
    with pytest.raises(ValueError, match="patch_length 3 must divide chunk_length 8"):
        PatchLayout(8, 3, (2,))
    with pytest.raises(ValueError, match="group_sizes"):
        PatchLayout(8, 2, (2, 0))
