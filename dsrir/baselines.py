"""Classical restoration methods a user would try instead of DSRIR, for side-by-side quality benchmarks.

Every function takes and returns an RGB uint8 H x W x 3 image, the convention of ``dsrir.data`` and
``dsrir.evaluate``. Rain has no classical baseline here: single-image deraining methods that predate deep
learning (sparse coding, layer priors) have no maintained implementation to call.
"""

from __future__ import annotations

import cv2
import numpy as np

from dsrir.errors import DSRIRError

BM3D_MISSING = "bm3d is not installed: pip install bm3d (non-commercial licence)"
DCP_PATCH = 15
DCP_OMEGA = 0.95
DCP_T0 = 0.1
DCP_TOP_FRACTION = 0.001
# Guided-filter refinement as in He et al.'s guided-filter paper for dehazing: a wide window, a small epsilon.
DCP_GUIDE_RADIUS = 60
DCP_GUIDE_EPS = 1e-4


def nlm_strength(sigma: float) -> float:
    """OpenCV's ``h`` (= ``hColor``) for Gaussian noise of standard deviation ``sigma`` (0-255 scale).

    Tuned once on six 256 x 256 crops of training photos (never the validation ones) over h, hColor in
    0.4-1.2 sigma and 7/9-pixel templates with 21/35-pixel searches: the best were h = hColor = 0.8 sigma at
    sigma 15 and 25 and 0.6 sigma at 50, with the default 7/21 windows. ``0.9 - 0.006 sigma`` follows that
    (0.81, 0.75, 0.6) within 0.05 dB of the best setting at each sigma.
    """
    return sigma * max(0.5, 0.9 - 0.006 * sigma)


def nlm_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means (Buades et al., CVPR 2005) through OpenCV's ``fastNlMeansDenoisingColored``.

    OpenCV filters luminance and colour separately in CIELAB, converting from BGR, hence the swaps.
    """
    strength = nlm_strength(sigma)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    denoised = cv2.fastNlMeansDenoisingColored(bgr, None, strength, strength, 7, 21)
    return cv2.cvtColor(denoised, cv2.COLOR_BGR2RGB)


def has_bm3d() -> bool:
    """Whether the optional ``bm3d`` package can be imported (it is never a dependency: non-commercial licence)."""
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return False
    return True


def cbm3d_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """Colour BM3D (Dabov et al., ICIP 2007) through the optional ``bm3d`` package, in its opponent colour space."""
    try:
        import bm3d
    except ImportError:
        raise DSRIRError(BM3D_MISSING) from None
    noisy = image.astype(np.float32) / 255.0
    denoised = bm3d.bm3d_rgb(noisy, sigma_psd=sigma / 255.0)
    return np.clip(np.rint(np.asarray(denoised) * 255.0), 0, 255).astype(np.uint8)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (ECCV 2010, Algorithm 1) for a grey ``guide`` and a one-channel ``source``.

    An edge-preserving smoother in O(N) built from box filters, because opencv-contrib's ximgproc is not
    available here. Both inputs are float H x W; the result is float32.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)

    guide, source = guide.astype(np.float32), source.astype(np.float32)
    mean_guide, mean_source = box(guide), box(source)
    covariance = box(guide * source) - mean_guide * mean_source
    variance = box(guide * guide) - mean_guide * mean_guide
    a = covariance / (variance + np.float32(eps))
    b = mean_source - a * mean_guide
    return box(a) * guide + box(b)


def dark_channel(image: np.ndarray, patch: int = DCP_PATCH) -> np.ndarray:
    """Minimum over the colour channels and a ``patch`` x ``patch`` window (an erosion) of a float image."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2), kernel, borderType=cv2.BORDER_REFLECT)


def estimate_airlight(image: np.ndarray, dark: np.ndarray, top_fraction: float = DCP_TOP_FRACTION) -> np.ndarray:
    """Per-channel airlight: among the brightest ``top_fraction`` of the dark channel (the most haze-opaque
    pixels), the input pixel of highest intensity, as He et al. choose it."""
    count = max(1, round(dark.size * top_fraction))
    candidates = np.argpartition(dark.ravel(), -count)[-count:]
    pixels = image.reshape(-1, 3)[candidates]
    return pixels[np.argmax(pixels.sum(axis=1))]


def dark_channel_dehaze(image: np.ndarray) -> np.ndarray:
    """Dark channel prior dehazing (He, Sun and Tang, CVPR 2009): patch 15, omega 0.95, t0 0.1, airlight from the
    brightest 0.1 % of the dark channel, transmission refined with a guided filter on the grey image."""
    hazy = image.astype(np.float32) / 255.0
    airlight = estimate_airlight(hazy, dark_channel(hazy))
    raw_transmission = 1.0 - DCP_OMEGA * dark_channel(hazy / np.maximum(airlight, 1e-3))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    transmission = guided_filter(grey, raw_transmission, DCP_GUIDE_RADIUS, DCP_GUIDE_EPS)
    transmission = np.maximum(transmission, DCP_T0)[..., None]
    restored = (hazy - airlight) / transmission + airlight
    return np.clip(np.rint(restored * 255.0), 0, 255).astype(np.uint8)
