"""avcorr: self-supervised audio-visual correspondence and the audio models around it."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = next(line.split('"')[1] for line in (here / "avcorr" / "__init__.py").read_text().splitlines()
               if line.startswith("__version__"))

# torch, torchvision, torchaudio and torchcodec must come from one matching release set: their
# compiled parts link against each other. The measured set below works on CPU and CUDA machines.
# The local CPU-only torch wheel some machines carry ("+cpu") cannot load the registry's
# torchvision/torchaudio/torchcodec builds, so it is excluded explicitly.
TORCH_SET = [
    "torch==2.13.*,!=2.13.0+cpu",
    "torchvision==0.28.*",
    "torchaudio==2.11.*",
    "torchcodec==0.17.*",
]

setup(
    name="avcorr",
    version=version,
    description="Self-supervised audio-visual correspondence: AVE-Net, AVOL-Net, Sound of Pixels, PANNs, AST",
    long_description=(here / "README.md").read_text(encoding="utf-8") if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["avcorr", "avcorr.*", "data_tools", "data_tools.*"])
    + ["avcorr.configs", "avcorr.configs.common"],
    package_dir={"avcorr.configs": "configs"},
    install_requires=TORCH_SET + [
        "decord>=0.6; platform_machine == 'x86_64'",
        "opencv-python-headless>=4.8",
        "numpy>=1.24",
        "scipy>=1.10",
        "pandas>=2.0",
        "faiss-cpu>=1.8",
        "yt-dlp>=2024.1",
        "timm>=1.0",
        "h5py>=3.8",
        "tqdm>=4.65",
        "tensorboard>=2.14",
        "matplotlib>=3.7",  # heatmaps, contact sheets, spectrogram figures, AP bar charts
        "mir_eval>=0.7",  # reference BSS-eval (SDR/SIR/SAR) for Sound of Pixels
        "fast_bss_eval>=0.1.4",  # the same SDR/SIR/SAR in torch/numpy, much faster
        "openpyxl>=3.1",  # pandas reads the AGS .xlsx label sheets through it
    ],
    extras_require={
        "gpu": ["faiss-gpu-cu12>=1.8"],  # GPU FAISS; replaces faiss-cpu at import time when a GPU is present
        "test": ["pytest>=7", "pytest-timeout>=2.1", "scikit-learn>=1.3"],  # pytest.ini: per-test timeout
    },
    entry_points={
        "console_scripts": [
            "avcorr-train=avcorr.train:main",
            "avcorr-evaluate=avcorr.evaluate:main",
            "avcorr-retrieve=avcorr.retrieve:main",
            "avcorr-localize=avcorr.localize:main",
            "avcorr-separate=avcorr.separate:main",
            "avcorr-recognize=avcorr.recognize_cli:main",
            "avcorr-tag=avcorr.tag:main",
            "avcorr-report=avcorr.report:main",
            "avcorr-hub=avcorr.hub:main",
            "avcorr-validate=data_tools.validate:main",
        ]
    },
)
