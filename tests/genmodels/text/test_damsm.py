"""DAMSM: encoder shapes and padding, the word and sentence losses equal the authors' words_loss and
sent_loss (computed here with loops), the loss prefers true pairs, class masking, training lowers the
loss, checkpoints round-trip with weights_only, the pluggable text-encoder registry."""

import math

import pytest
import torch
from torch import nn

from tests.genmodels.gans.text_helpers import one_thread  # noqa: F401 (autouse fixture)
from genmodels.text.damsm import (
    DAMSM, TEXT_ENCODERS, CNNEncoder, RNNEncoder, damsm_loss, load_damsm, make_text_encoder, matching_loss,
    register_text_encoder, word_region_similarity,
)

VOCAB = ["<pad>", "<unk>", "a", "red", "blue", "bird", "flower"]


def test_text_encoder_shapes_and_padding():
    encoder = RNNEncoder(len(VOCAB), embedding_dim=8, dim=16).eval()
    tokens = torch.tensor([[2, 3, 5, 0, 0], [2, 4, 6, 5, 2]])
    words, sentence = encoder(tokens, torch.tensor([3, 5]))
    assert words.shape == (2, 16, 5) and sentence.shape == (2, 16)
    assert words[0, :, 3:].abs().max() == 0  # nothing after a caption's end
    # Padding does not change a caption's features.
    alone_words, alone_sentence = encoder(tokens[:1, :3], torch.tensor([3]))
    torch.testing.assert_close(alone_sentence, sentence[:1])
    torch.testing.assert_close(alone_words, words[:1, :, :3])


def test_image_encoder_regions_and_global():
    regions, global_ = CNNEncoder(dim=16, width=4)(torch.randn(2, 3, 32, 32))
    assert regions.shape == (2, 16, 16) and global_.shape == (2, 16)  # 4x4 regions at 1/8 of 32


def test_matching_loss_is_low_for_true_pairs_and_masks_same_class():
    scores = torch.eye(4) * 0.9
    low, high = matching_loss(scores, 10.0), matching_loss(scores.flip(0), 10.0)
    assert low < 0.01 < high
    # Two images of one class: the other's caption is not counted as a negative.
    confusing = torch.tensor([[0.9, 0.9], [0.9, 0.9]])
    assert matching_loss(confusing, 10.0, torch.tensor([0, 0])) < 1e-6 < matching_loss(confusing, 10.0)


def test_word_similarity_ignores_padding_words():
    torch.manual_seed(0)
    words, regions = torch.randn(2, 8, 4), torch.randn(3, 8, 5)
    lengths = torch.tensor([2, 4])
    scores = word_region_similarity(words, lengths, regions, 4.0, 5.0)
    assert scores.shape == (3, 2)
    changed = words.clone()
    changed[0, :, 2:] = 100.0  # garbage after the end of caption 0
    torch.testing.assert_close(word_region_similarity(changed, lengths, regions, 4.0, 5.0), scores)


def _official_words_and_sentence_loss(words, lengths, regions, sentence, global_, gammas, labels=None):
    """AttnGAN's words_loss and sent_loss (code/miscc/losses.py, code/GlobalAttention.py), one number at a time."""
    gamma1, gamma2, gamma3 = gammas
    n, d = words.shape[0], words.shape[1]

    def cosine(a, b):
        dot = sum(x * y for x, y in zip(a, b))
        return dot / max(math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)), 1e-8)

    def softmax(values):
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        return [e / sum(exps) for e in exps]

    def cross_entropy(rows):  # rows[i]: logits of query i, target i (-inf entries left out)
        total = 0.0
        for i, row in enumerate(rows):
            finite = [v for v in row if v != -math.inf]
            top = max(finite)
            total += -(row[i] - top - math.log(sum(math.exp(v - top) for v in finite)))
        return total / len(rows)

    W, R = words.tolist(), regions.tolist()
    similarity = [[0.0] * n for _ in range(n)]  # similarity[j][i]: image j, caption i
    for i in range(n):
        T = int(lengths[i])
        e = [[W[i][k][t] for k in range(d)] for t in range(T)]  # the caption's words
        for j in range(n):
            v = [[R[j][k][r] for k in range(d)] for r in range(len(R[j][0]))]  # image j's regions
            attn = [[sum(a * b for a, b in zip(v_r, e_t)) for e_t in e] for v_r in v]  # Eq. 7: regions x words
            attn = [softmax(row) for row in attn]  # Eq. 8: over the words, per region
            score = 0.0
            for t in range(T):
                alpha = softmax([gamma1 * attn[r][t] for r in range(len(v))])  # Eq. 9
                context = [sum(alpha[r] * v[r][k] for r in range(len(v))) for k in range(d)]
                score += math.exp(gamma2 * cosine(e[t], context))
            similarity[j][i] = math.log(score)  # row_sim.mul_(GAMMA2).exp_().sum().log(): no 1/gamma2
    G, S = global_.tolist(), sentence.tolist()
    sentence_scores = [[gamma3 * cosine(G[j], S[i]) for i in range(n)] for j in range(n)]
    word_scores = [[gamma3 * x for x in row] for row in similarity]
    for scores in (word_scores, sentence_scores):
        for i in range(n):
            for j in range(n):
                if labels is not None and i != j and labels[i] == labels[j]:
                    scores[i][j] = -math.inf
    transpose = lambda m: [list(col) for col in zip(*m)]  # noqa: E731
    return (cross_entropy(word_scores) + cross_entropy(transpose(word_scores)),
            cross_entropy(sentence_scores) + cross_entropy(transpose(sentence_scores)))


def test_word_and_sentence_losses_equal_the_authors_code():
    torch.manual_seed(0)
    words, regions = torch.randn(3, 4, 5, dtype=torch.float64), torch.randn(3, 4, 6, dtype=torch.float64)
    sentence, global_ = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 3])
    for labels in (None, torch.tensor([0, 1, 0])):
        word_loss, sentence_loss = damsm_loss(words, sentence, lengths, regions, global_, (4.0, 5.0, 10.0), labels)
        expected_word, expected_sentence = _official_words_and_sentence_loss(
            words, lengths, regions, sentence, global_, (4.0, 5.0, 10.0), None if labels is None else labels.tolist())
        assert word_loss.item() == pytest.approx(expected_word, rel=1e-9)
        assert sentence_loss.item() == pytest.approx(expected_sentence, rel=1e-9)


def test_damsm_loss_prefers_matching_features():
    torch.manual_seed(0)
    words, regions = torch.randn(4, 8, 3), torch.randn(4, 8, 3)
    sentence = global_ = torch.randn(4, 8)
    lengths = torch.full((4,), 3)
    matched = damsm_loss(regions, sentence, lengths, regions, global_)  # words equal to the regions
    shuffled = damsm_loss(regions, sentence.roll(1, 0), lengths, regions.roll(1, 0), global_)
    assert matched[0] < shuffled[0] and matched[1] < shuffled[1]


def test_training_lowers_the_loss_and_the_checkpoint_round_trips(tmp_path):
    import pytorch_lightning as pl

    from datamodules.text_image import TextImageDataModule

    pl.seed_everything(0)
    dm = TextImageDataModule("shapes", image_size=16, batch_size=16, num_workers=0, synthetic_size=128)
    model = DAMSM(dm.vocab, dim=16, embedding_dim=8, width=8)
    batch = dm.on_after_batch_transfer(dm._dataset("val").__getitems__(range(16)), 0)
    with torch.no_grad():
        before = sum(model.eval().losses(batch))
    model.train()
    trainer = pl.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, dm)
    with torch.no_grad():
        after = sum(model.eval().losses(batch))
    assert after < before - 0.5
    trainer.save_checkpoint(tmp_path / "damsm.ckpt", weights_only=True)
    loaded = load_damsm(str(tmp_path / "damsm.ckpt"))
    assert loaded.vocab == dm.vocab
    with torch.no_grad():
        torch.testing.assert_close(sum(loaded.losses(batch)), after)


def test_text_encoders_are_selected_by_registered_name():
    @register_text_encoder("mean-of-embeddings")
    class MeanEncoder(nn.Module):
        def __init__(self, vocab_size, embedding_dim, dim):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, dim)

        def forward(self, tokens, lengths):
            words = self.embedding(tokens).transpose(1, 2)
            return words, words.sum(2) / lengths[:, None]

    try:
        encoder = make_text_encoder("mean-of-embeddings", 7, 8, 16)
        words, sentence = encoder(torch.tensor([[2, 3]]), torch.tensor([2]))
        assert words.shape == (1, 16, 2) and sentence.shape == (1, 16)
        with pytest.raises(ValueError, match="unknown text_encoder 'bert'"):
            make_text_encoder("bert", 7, 8, 16)
    finally:
        TEXT_ENCODERS.pop("mean-of-embeddings")


def test_pretraining_schedule_is_the_authors_new_adam_per_epoch_with_lr_decay():
    """AttnGAN code/pretrain_DAMSM.py: lr = ENCODER_LR; for each epoch: optimizer = optim.Adam(para,
    lr=lr, betas=(0.5, 0.999)); train; if lr > ENCODER_LR / 10.: lr *= 0.98. Re-derived here."""
    import pytorch_lightning as pl

    from datamodules.text_image import TextImageDataModule

    class Record(pl.Callback):
        def __init__(self):
            self.rows = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            optimizer = trainer.optimizers[0]
            steps = {int(state["step"]) for state in optimizer.state.values()}
            self.rows.append((trainer.current_epoch, batch_idx, optimizer.param_groups[0]["lr"], steps,
                              optimizer.param_groups[0]["betas"]))

    pl.seed_everything(0)
    dm = TextImageDataModule("shapes", image_size=16, batch_size=16, num_workers=0, synthetic_size=32)
    model = DAMSM(dm.vocab, dim=16, embedding_dim=8, width=8, lr=0.002)
    record = Record()
    pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               num_sanity_val_steps=0, limit_val_batches=0, callbacks=[record]).fit(model, dm)
    lr, expected = 0.002, []
    for epoch in range(3):
        expected += [(epoch, step, pytest.approx(lr), {step + 1}, (0.5, 0.999)) for step in range(2)]
        if lr > 0.002 / 10.0:
            lr *= 0.98
    assert record.rows == expected
    # the decay stops once lr is no longer above a tenth of its start: 114 decays
    assert model.epoch_lr(600) == pytest.approx(0.002 * 0.98**114) and model.epoch_lr(114) == model.epoch_lr(600)
    assert 0.002 * 0.98**113 > 0.0002 >= 0.002 * 0.98**114
    constant = DAMSM(dm.vocab, dim=16, embedding_dim=8, width=8, lr_decay=1.0)
    assert constant.epoch_lr(50) == 0.002


def test_frozen_inception_batchnorm_runs_in_train_mode_as_the_authors():
    """pretrain_DAMSM.py calls cnn_model.train(): the frozen Inception's BatchNorm layers use batch
    statistics and update their running averages; backbone_batchnorm='eval' keeps them fixed."""
    encoder = CNNEncoder(dim=8, backbone="inception_v3").train()
    norms = [m for m in encoder.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.training for m in norms)
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
    before = norms[0].running_mean.clone()
    with torch.no_grad():
        encoder(torch.rand(2, 3, 75, 75) * 2 - 1)
    assert not torch.equal(norms[0].running_mean, before)
    fixed = CNNEncoder(dim=8, backbone="inception_v3", backbone_batchnorm="eval").train()
    assert not any(m.training for m in fixed.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(m.training for m in encoder.eval().backbone.modules() if isinstance(m, nn.BatchNorm2d))
