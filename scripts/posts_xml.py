#!/usr/bin/env python3
"""Writes a Stack Exchange-shaped Posts.xml of about SIZE bytes to stdout, for
measuring `charrnn prepare stackexchange` (e.g. beside the same file as .7z).
Questions and their answers are interleaved as in a real dump (answers come
after later questions); bodies are HTML escaped into attributes.

usage: scripts/posts_xml.py SIZE_BYTES [SEED] > Posts.xml
"""
import random
import sys
from html import escape

size = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
words = ("the a of to and in is it that for you with on this how can i my do not be "
         "file function error code value list string python rust java array loop "
         "return type class method object data memory thread read write test").split()

def sentence():
    return " ".join(rng.choice(words) for _ in range(rng.randint(5, 16))).capitalize() + "."

def body():
    parts = ["<p>" + " ".join(sentence() for _ in range(rng.randint(1, 4))) + "</p>"
             for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        parts.append("<pre><code>fn main() {\n    let x = 1 &lt; 2;\n}\n</code></pre>")
    return escape("\n".join(parts)).replace("\n", "&#xA;")

out = sys.stdout
out.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
written, next_id, open_questions = 0, 1, []
while written < size:
    if open_questions and rng.random() < 0.6:
        q = rng.choice(open_questions)
        row = (f'  <row Id="{next_id}" PostTypeId="2" ParentId="{q}" Score="{rng.randint(-2, 20)}" '
               f'Body="{body()}" ContentLicense="CC BY-SA 4.0" />\n')
    else:
        row = (f'  <row Id="{next_id}" PostTypeId="1" Score="{rng.randint(-5, 50)}" Body="{body()}" '
               f'Title="{escape(sentence())}" Tags="&lt;{rng.choice(words)}&gt;" ContentLicense="CC BY-SA 4.0" />\n')
        open_questions.append(next_id)
        if len(open_questions) > 200:
            open_questions.pop(0)
    out.write(row)
    written += len(row)
    next_id += 1
out.write("</posts>\n")
