"""The recipes the screens compare (experiments.py, logs_experiments.py): each one's settings declared once here.

RECIPES: name -> (what it is, the data it reads, settings). Data: "pairs" | "mined" | "labelled" | "traps" | "llm" |
"second-pairs" | "more-second-pairs" are training files; "preserve": STS-B train's texts held near the base model's
vectors (preserve_data). Only two shipped (docs/experiments.md); the others' outcomes are in results/.
"""

WIDE_LORA = {"lora_rank": 16, "lora_alpha": 32, "target_modules": ["query", "key", "value", "dense"]}
V1_SETTINGS = {"loss": ["online-contrastive"], **WIDE_LORA, "lr": 5e-4, "epochs": 4, "batch_size": 32}
MNR_LORA_SETTINGS = {"loss": ["mnr"], **WIDE_LORA, "lr": 3e-4, "epochs": 3, "batch_size": 64}
MNR_FULL_SETTINGS = {"loss": ["mnr"], "lora": False, "lr": 2e-5, "epochs": 3, "batch_size": 64}
# name -> (what it is, the data it reads, settings). Data: "pairs" | "mined" | "labelled" | "traps" | "llm" | "second-pairs" | "more-second-pairs"
# are training files; "preserve": STS-B train's texts held near the base model's vectors (preserve_data).
RECIPES = {
    "oc-lora": ("v1 (shipped): OnlineContrastive on the labelled pairs, LoRA r16 on every linear layer, 4 epochs", ["pairs"], V1_SETTINGS),
    "oc-lora+rqe": (
        "v1's recipe on the labelled pairs plus RQE's training pairs (1,000 sampled questions; medical only)",
        ["pairs", "second-pairs"],
        V1_SETTINGS,
    ),
    "oc-lora+rqe3000": (
        "v1's recipe on the labelled pairs plus RQE's training pairs from 3,000 sampled questions (medical only)",
        ["pairs", "more-second-pairs"],
        V1_SETTINGS,
    ),
    "mnr-full": (
        "MNR on same-intent pairs with base-mined hard negatives, every weight, 3 epochs",
        ["mined"],
        MNR_FULL_SETTINGS,
    ),
    "mnr-lora": (
        "MNR on same-intent pairs with base-mined hard negatives, LoRA r16 on every linear layer, 3 epochs",
        ["mined"],
        MNR_LORA_SETTINGS,
    ),
    "gist-full": (
        "GISTEmbed on the mined triplets (the base model as a guide drops in-batch false negatives), every weight",
        ["mined"],
        {"loss": ["gist"], "lora": False, "lr": 2e-5, "epochs": 3, "batch_size": 64},
    ),
    "cmnr-full": (
        "cached MNR, batch 256 (more in-batch negatives), every weight",
        ["mined"],
        {"loss": ["cached-mnr"], "lora": False, "lr": 4e-5, "epochs": 3, "batch_size": 256, "mini_batch_size": 64},
    ),
    "gist-lora": (
        "GISTEmbed on the mined triplets, LoRA r16 on every linear layer",
        ["mined"],
        {"loss": ["gist"], **WIDE_LORA, "lr": 3e-4, "epochs": 3, "batch_size": 64},
    ),
    "cmnr-lora": (
        "cached MNR, batch 256 (more in-batch negatives), LoRA r16 on every linear layer",
        ["mined"],
        {"loss": ["cached-mnr"], **WIDE_LORA, "lr": 3e-4, "epochs": 3, "batch_size": 256, "mini_batch_size": 64},
    ),
    "mnr-lora+llm": (
        "mnr-lora's triplets plus the 0.5B model's paraphrases of the training questions with mined negatives (the seed "
        "paper's synthetic data beside the labels)",
        ["mined", "llm"],
        MNR_LORA_SETTINGS,
    ),
    "mnr-lora+labelled": (
        "mnr-lora's triplets plus triplets whose hard negative is the labelled non-duplicate of the same first text "
        "(medical: mqp's doctor-written look-alike and RQE's non-answers; programming: prepare's lexical look-alikes)",
        ["mined", "labelled"],
        MNR_LORA_SETTINGS,
    ),
    "mnr-lora+labelled+traps": (
        "mnr-lora+labelled's triplets plus one rule-made trap per kind of each training anchor as its hard negative "
        "(`mine --negatives-from traps`: negation, number, entity, scope)",
        ["mined", "labelled", "traps"],
        MNR_LORA_SETTINGS,
    ),
    "mnr-full+labelled": (
        "mnr-lora+labelled's triplets (base-mined and labelled look-alike negatives), every weight, 3 epochs",
        ["mined", "labelled"],
        MNR_FULL_SETTINGS,
    ),
    "mnr+oc-lora": (
        "MNR on the mined triplets and OnlineContrastive on the labelled pairs together, LoRA r16 on every linear layer",
        ["mined", "pairs"],
        {"loss": ["mnr", "online-contrastive"], **WIDE_LORA, "lr": 3e-4, "epochs": 3, "batch_size": 64},
    ),
    "mnr+oc-lora+preserve": (
        "mnr+oc-lora with STS-B train's texts held near the base model's vectors during training (preserve_data, weight 1)",
        ["mined", "pairs", "preserve"],
        {"loss": ["mnr", "online-contrastive"], **WIDE_LORA, "lr": 3e-4, "epochs": 3, "batch_size": 64},
    ),
    "oc-lora+preserve": (
        "v1's recipe with STS-B train's texts held near the base model's vectors during training (preserve_data, weight 1)",
        ["pairs", "preserve"],
        V1_SETTINGS,
    ),
    "mnr+oc-full": (
        "MNR on the mined triplets and OnlineContrastive on the labelled pairs together, every weight",
        ["mined", "pairs"],
        {"loss": ["mnr", "online-contrastive"], "lora": False, "lr": 2e-5, "epochs": 3, "batch_size": 64},
    ),
}
UNGUARDED = "mnr-full-no-guard"  # the guard's effect: mnr-full trained without general_data
MAX_SEQ_LENGTH = {"programming": 64, "medical": 128}
