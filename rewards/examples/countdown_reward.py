"""The countdown reward in Python, rule for rule the built-in `countdown` (rewards/countdown.cpp):
1 if the response's expression uses exactly the row's numbers, each once, with + - * / and
parentheses, and equals the target; else 0. A test runs the demo with this program and with
the built-in and checks that every reward, and so the final weights, are identical.

    reward: {components: [{name: external, command: "python3 rewards/examples/countdown_reward.py", correctness: true}]}
"""

import os
import sys
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from anchor_reward import serve  # noqa: E402

MAX_CHARS = 256   # bytes of the expression, as the C++ parser counts
MAX_DEPTH = 32
LIMIT = 1 << 62   # numerators and denominators stay below this, or the expression is wrong
SPACE = " \t\n\v\f\r"  # C isspace


class Invalid(Exception):
    pass


class Parser:
    def __init__(self, text):
        self.s, self.pos, self.literals = text, 0, []

    def skip_space(self):
        while self.pos < len(self.s) and self.s[self.pos] in SPACE:
            self.pos += 1

    def peek(self):
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def parse(self):
        value = self.expr(0)
        self.skip_space()
        if self.pos != len(self.s):
            raise Invalid("unexpected character")
        return value

    @staticmethod
    def checked(value):
        if not (-LIMIT < value.numerator < LIMIT and value.denominator < LIMIT):
            raise Invalid("value out of range")
        return value

    def expr(self, depth):
        value = self.term(depth)
        while True:
            self.skip_space()
            op = self.peek()
            if op not in ("+", "-") or op == "":
                return value
            self.pos += 1
            rhs = self.term(depth)
            value = self.checked(value + rhs if op == "+" else value - rhs)

    def term(self, depth):
        value = self.factor(depth)
        while True:
            self.skip_space()
            op = self.peek()
            if op not in ("*", "/") or op == "":
                return value
            self.pos += 1
            rhs = self.factor(depth)
            if op == "/":
                if rhs == 0:
                    raise Invalid("division by zero")
                value = self.checked(value / rhs)
            else:
                value = self.checked(value * rhs)

    def factor(self, depth):
        if depth > MAX_DEPTH:
            raise Invalid("nesting too deep")
        self.skip_space()
        c = self.peek()
        if c == "":
            raise Invalid("expression ends early")
        if c == "(":
            self.pos += 1
            value = self.expr(depth + 1)
            self.skip_space()
            if self.peek() != ")":
                raise Invalid("missing ')'")
            self.pos += 1
            return value
        if not ("0" <= c <= "9"):
            raise Invalid("expected a number or '('")
        start = self.pos
        while self.pos < len(self.s) and "0" <= self.s[self.pos] <= "9":
            if self.pos - start >= 12:
                raise Invalid("number too long")
            self.pos += 1
        literal = int(self.s[start:self.pos])
        self.literals.append(literal)
        return Fraction(literal)


def extract_expression(response):
    """The last <answer>...</answer>, else the rest of the line after the last "Answer:", else
    the last non-empty line; anything from the first '=' on is dropped."""
    close = response.rfind("</answer>")
    open_ = response.rfind("<answer>", 0, close + len("<answer>")) if close >= 0 else -1
    if open_ >= 0:
        candidate = response[open_ + 8:close]
    elif (at := response.rfind("Answer:")) >= 0:
        candidate = response[at + 7:].split("\n", 1)[0]
    else:
        rest = response.strip(SPACE)
        candidate = rest[rest.rfind("\n") + 1:]
    return candidate.split("=", 1)[0].strip(SPACE)


def verify(expression, numbers, target):
    expression = expression.strip(SPACE)
    if not expression or len(expression.encode("utf-8")) > MAX_CHARS:
        return False
    parser = Parser(expression)
    try:
        value = parser.parse()
    except Invalid:
        return False
    return sorted(parser.literals) == sorted(numbers) and value == target


def reward(row):
    example = row["example"]
    numbers, target = example.get("numbers"), example.get("target")
    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)
    if not isinstance(numbers, list) or not numbers or not is_int(target) or not all(is_int(n) for n in numbers):
        raise ValueError("the row needs 'numbers' (a non-empty list of integers) and 'target' (an integer)")
    return 1.0 if verify(extract_expression(row["completion"]), numbers, target) else 0.0


if __name__ == "__main__":
    serve(reward)
