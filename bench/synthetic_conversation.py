"""Write synthetic conversations with planted facts, in the recall benchmark's operator format.

Each conversation alternates user and character messages: everyday filler,
near-miss distractors, and facts planted in user messages (some across two
messages far apart), with one question per fact and the ids of its evidence
messages (``honeychat.testing.synthetic``). ``bench/recall.py --long N`` uses
the same generator for its long case; this script writes files an operator
can read, edit or replay::

    python bench/synthetic_conversation.py --messages 4000 --facts 66 -o long.json
    python bench/recall.py long.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from honeychat.testing import synthetic


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4000, help="messages per conversation")
    parser.add_argument("--facts", type=int, default=0, help="planted facts (0: messages / 60)")
    parser.add_argument("--conversations", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first conversation")
    parser.add_argument("-o", "--output", default="-", help="file to write ('-': stdout)")
    args = parser.parse_args(argv)
    facts = args.facts or max(8, args.messages // 60)
    try:
        conversations = [
            synthetic.conversation(
                args.messages, facts, seed=args.seed + i, conversation_id=f"synthetic-{i + 1}"
            )
            for i in range(args.conversations)
        ]
    except ValueError as exc:
        print(f"synthetic_conversation: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(synthetic.dataset(conversations), indent=1)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
