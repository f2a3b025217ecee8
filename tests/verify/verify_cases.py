# ruff: noqa: E501
r"""The table-driven equivalence suite: (category, gold, prediction, expected).

``prediction`` is a final answer (the contents of a box), except in the ``extraction`` category, where it
is a full model response. The labels are what a careful human grader of MATH would decide; the policy
choices they encode are documented in docs/verifier.md (for example: order matters in tuples and not in
answer lists; open/closed interval ends matter; a gold written as a decimal accepts a non-decimal value
that rounds to it; ``50\%`` is 50, never 0.5).
"""

from __future__ import annotations

T, F = True, False

NUMBERS = [
    ("7", "7", T), ("-12", "-12", T), ("7", "-7", F), ("500", "5", F), ("5", "500", F), ("12", "12.0", T),
    ("12", "012", T), ("0", "-0", T), ("3", "3.5", F), ("1000", "1,000", T), ("1000000", "1,000,000", T),
    ("1000", "100", F), ("10", "10.", T), ("42", "+42", T), ("-3", "- 3", T), ("6", "6.00", T),
    ("6", "6.01", F), ("8", "2^3", T), ("120", "5!", T), ("10", "\\binom{5}{2}", T), ("9", "3^2+1", F),
    ("2", "\\frac{4}{2}", T), ("-1", "1", F), ("2019", "2019", T), ("2019", "2091", F),
    ("0", "0.0", T), ("1", "0.999", F), ("24", "4!", T), ("1024", "2^{10}", T), ("1023", "2^{10}", F),
]

FRACTIONS_DECIMALS = [
    ("\\frac{1}{2}", "0.5", T), ("\\frac12", "\\frac{1}{2}", T), ("\\frac{3}{4}", "\\dfrac{3}{4}", T),
    ("\\frac{3}{4}", "\\tfrac34", T), ("\\frac{3}{4}", "0.75", T), ("\\frac{3}{4}", "3/4", T),
    ("\\frac{3}{4}", "\\frac{6}{8}", T), ("\\frac{3}{4}", "\\frac{4}{3}", F), ("-\\frac{5}{2}", "-2.5", T),
    ("-\\frac{5}{2}", "\\frac{-5}{2}", T), ("-\\frac{5}{2}", "\\frac{5}{-2}", T), ("-\\frac{5}{2}", "\\frac{5}{2}", F),
    ("2\\frac{1}{3}", "\\frac{7}{3}", T), ("2\\frac{1}{3}", "2.333", F), ("\\frac{7}{3}", "2\\frac13", T),
    ("8\\frac47", "\\frac{60}{7}", T), ("\\frac{1}{3}", "0.\\overline{3}", T), ("\\frac{1}{3}", "0.333", F),
    ("\\frac{1}{3}", "0.33", F), ("0.5", "\\frac{1}{2}", T), (".5", "0.5", T), ("0.50", "\\frac12", T),
    ("\\frac{1}{2}", "\\frac{1}{3}", F), ("\\frac{2}{3}", "0.67", F), ("1.25", "\\frac{5}{4}", T),
    ("\\frac{5}{4}", "1\\frac14", T), ("\\frac{1}{2}", "1/2", T), ("-\\frac{4}{3}", "-\\dfrac{4}{3}", T),
    ("\\frac{128}{3}", "42\\frac{2}{3}", T), ("\\frac{128}{3}", "42.67", F), ("3 \\frac{3}{8}", "\\frac{27}{8}", T),
    ("3 \\frac{3}{8}", "3.375", T), ("3 \\frac{3}{8}", "\\frac{9}{8}", F), ("\\frac{7}{27}", "\\frac{7}{72}", F),
    ("\\frac{2007}{2008}", "\\frac{2007}{2008}", T), ("\\frac{2007}{2008}", "1", F), ("\\frac{1}{99}", "0.\\overline{01}", T),
    ("-0.25", "-\\frac14", T), ("-0.25", "\\frac14", F), ("\\frac{9}{7}", "\\frac{18}{14}", T),
    ("\\frac 59", "\\frac{5}{9}", T), ("\\frac{33}{2}", "16.5", T), ("\\frac{33}{2}", "16\\frac12", T),
    ("\\frac{33}{2}", "15.5", F), ("0.015", "\\frac{3}{200}", T), ("0.015", "0.15", F),
]

FORMATTING = [
    ("\\left( 1, 2 \\right)", "(1,2)", T), ("5", "5\\text{ cm}", T), ("5", "5 \\text{ cm}^2", T),
    ("12", "12\\text{ square units}", T), ("12\\text{ square units}", "12", T), ("5", "\\mbox{5}", T),
    ("5", "5 \\mbox{ inches}", T), ("5", "6\\text{ cm}", F), ("30", "30^\\circ", T), ("30^\\circ", "30", T),
    ("30^\\circ", "30^{\\circ}", T), ("30^\\circ", "35^\\circ", F), ("50\\%", "50", T), ("50\\%", "50\\%", T),
    ("50\\%", "0.5", F), ("0.5", "50\\%", F), ("\\$18.90", "18.90", T), ("\\$18.90", "18.9", T),
    ("\\$18.90", "\\$19.80", F), ("\\$5", "5 dollars", T), ("10236", "10,\\!236", T), ("10,\\!236", "10236", T),
    ("58,500", "58500", T), ("58,500", "58.5", F), ("3", "x=3", T), ("3", "x = 4", F), ("7", "7.", T),
    ("7", "7\\,", T), ("\\!\\sqrt{33}", "\\sqrt{33}", T), ("4130_5", "4130_{5}", T), ("4130_5", "4130", T),
    ("4130_5", "540", F), ("100", "100\\text{ points}", T), ("40\\text{ points}", "40", T),
    ("180^{\\circ}", "180", T), ("180^{\\circ}", "90^\\circ", F), ("100\\%", "100", T), ("\\$0.50", "0.5", T),
    ("-\\$0.50", "-0.50", T), ("\\$0.50", "\\$5", F), ("\\frac{1}{2}", "\\displaystyle\\frac{1}{2}", T),
    ("\\frac{1}{2}", "\\left(\\frac{1}{2}\\right)", T), ("10", "\\boxed{10}", T), ("54^\\circ", "54 degrees", T),
    ("2", "2\\text{ ways}", T), ("2", "3\\text{ ways}", F), ("15", "15\\text{ minutes}", T), ("8", "8\\;", T),
    ("\\text{4:30 p.m.}", "4:30 p.m.", T), ("\\text{4:30 p.m.}", "5:30 p.m.", F),
]

CONSTANTS_SCI = [
    ("\\infty", "\\infty", T), ("\\infty", "-\\infty", F), ("\\pi", "\\pi", T), ("2\\pi", "\\pi \\cdot 2", T),
    ("\\frac{\\pi}{2}", "\\pi/2", T), ("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi", T), ("\\frac{\\pi}{2}", "1.57", F),
    ("8\\pi", "8 \\pi", T), ("96\\pi+120", "120+96\\pi", T), ("96\\pi+120", "96\\pi-120", F),
    ("\\frac{\\pi}{2}", "\\frac{\\pi}{3}", F), ("900\\pi", "900 \\pi", T), ("\\pi", "3.14159", F),
    ("300000", "3 \\times 10^{5}", T), ("300000", "3e5", T), ("3\\times10^5", "300000", T),
    ("1.5\\times 10^{-3}", "0.0015", T), ("1.5\\times10^{-3}", "1.5\\times10^{3}", F), ("6.02\\times10^{23}", "6.02e23", T),
    ("2\\cdot 10^{3}", "2000", T), ("2\\cdot10^3", "200", F), ("4\\times 10^{6}", "4000000", T),
    ("\\frac{\\pi}{4} + 2 - \\sqrt2", "2+\\frac{\\pi}{4}-\\sqrt{2}", T), ("\\frac \\pi4 + 2 - \\sqrt2", "\\frac{\\pi}{4}+2+\\sqrt2", F),
    ("\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi", T), ("2 \\pi + 4", "4+2\\pi", T),
]

RADICALS = [
    ("2\\sqrt{3}", "\\sqrt{12}", T), ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", T),
    ("\\frac{\\sqrt2}{2}", "\\frac{1}{\\sqrt{2}}", T), ("\\sqrt{2}", "\\sqrt{3}", F), ("3-\\sqrt7", "-\\sqrt{7}+3", T),
    ("\\sqrt[3]{2}", "2^{1/3}", T), ("5\\sqrt{2}", "\\sqrt{50}", T), ("\\sqrt{53}", "\\sqrt{35}", F),
    ("1+\\sqrt2", "\\sqrt2+1", T), ("1+\\sqrt2", "1-\\sqrt2", F), ("\\frac{5\\sqrt{3}}{3}", "\\frac{5}{\\sqrt3}", T),
    ("2\\sqrt{2}", "2.83", F), ("\\sqrt2", "\\sqrt{2}", T), ("10\\sqrt{6}", "\\sqrt{600}", T),
    ("6\\sqrt{7}", "7\\sqrt{6}", F), ("\\frac{1}{\\sqrt{10}}", "\\frac{\\sqrt{10}}{10}", T),
    ("4+2\\sqrt{2}", "2(2+\\sqrt2)", T), ("4+2\\sqrt{2}", "4+\\sqrt{2}", F), ("\\frac{75 \\sqrt{3}}{67}", "\\frac{75}{67}\\sqrt{3}", T),
    ("3 \\sqrt{3}", "\\sqrt{27}", T), ("-\\sqrt{14}", "\\sqrt{14}", F), ("\\frac{5\\sqrt{42}}{27}", "\\frac{5}{27}\\sqrt{42}", T),
    ("\\sqrt{5}", "5^{1/2}", T), ("\\sqrt{5}", "5^{1/3}", F), ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5+2\\sqrt{6}}", T),
]

EXPRESSIONS = [
    ("x^2+2x+1", "(x+1)^2", T), ("2x-1", "-1+2x", T), ("2x-1", "2x+1", F), ("x^3+27", "(x+3)(x^2-3x+9)", T),
    ("\\frac{3x^2}{2}", "1.5x^2", T), ("17x-13", "17x - 13", T), ("y^4-2y^3+7y^2+y-5", "y^4 - 2y^3 + 7y^2 + y - 5", T),
    ("x^2", "x^3", F), ("a+b", "b+a", T), ("ab", "ba", T), ("\\frac{1}{x}", "x^{-1}", T),
    ("\\sin^2 x + \\cos^2 x", "1", T), ("2\\sin x\\cos x", "\\sin 2x", T), ("\\log_2 8", "3", T),
    ("\\ln(e^2)", "2", T), ("x+y", "x-y", F), ("(x-1)(x+1)", "x^2-1", T), ("|x|", "x", F), ("\\sqrt{x^2}", "x", F),
    ("6x^2+5x-6", "(3x-2)(2x+3)", T), ("x^2+7x+10", "(x+2)(x+5)", T), ("x^2+7x+10", "(x+2)(x+6)", F),
    ("2x^2-18", "2(x-3)(x+3)", T), ("-2x + 20", "20-2x", T), ("8x -1", "8x+1", F), ("x^2", "X^2", F),
    ("\\frac{x+1}{x-1}", "\\frac{-x-1}{1-x}", T), ("\\frac{x+1}{x-1}", "\\frac{x-1}{x+1}", F),
    ("4x^2", "(2x)^2", T), ("n(n+1)/2", "\\frac{n^2+n}{2}", T), ("2^{n+1}", "2\\cdot2^n", T),
    ("3^n", "n^3", F), ("\\cos x", "\\sin(\\frac{\\pi}{2}-x)", T), ("t^2-4t+4", "(t-2)^2", T),
]

EQUATIONS = [
    ("y = 2x + 3", "y=2x+3", T), ("y=2x+3", "y=3+2x", T), ("y=2x+3", "y=2x-3", F), ("y=2x+3", "2x-y+3=0", T),
    ("x^2+y^2=4", "y^2+x^2=4", T), ("x^2+y^2=4", "x^2+y^2=2", F), ("2x+3y=6", "4x+6y=12", T),
    ("b=0", "b=0", T), ("b=0", "0", T), ("b=0", "b=1", F), ("x=5", "5", T), ("x=5", "x=-5", F),
    ("y=-\\frac12x+3", "y = -0.5x + 3", T), ("y=-\\frac12x+3", "y=-2x+3", F), ("x+y=1", "y=1-x", T),
    ("x+y=1", "y=x-1", F), ("\\frac{x^2}{4}+\\frac{y^2}{9}=1", "9x^2+4y^2=36", T), ("y=x^2", "y=x^3", F),
    ("2x-y=3", "y=2x-3", T), ("z=3", "z = 3", T),
]

INTERVALS = [
    ("(1,2]", "(1,2]", T), ("(1,2]", "(1,2)", F), ("(1,2]", "[1,2]", F), ("[0,1)", "[0, 1)", T),
    ("[0,1)", "(0,1]", F), ("(5,\\infty)", "(5, \\infty)", T), ("(5,\\infty)", "[5,\\infty)", F),
    ("(-\\infty,3)\\cup(5,\\infty)", "(5,\\infty)\\cup(-\\infty,3)", T),
    ("(-\\infty,3)\\cup(5,\\infty)", "(-\\infty,3]\\cup(5,\\infty)", F),
    ("\\left[ -\\frac{\\pi}{2}, \\frac{\\pi}{2} \\right]", "[-\\pi/2,\\pi/2]", T), ("[-2,7]", "[-2, 7]", T),
    ("[-2,7]", "[-2,7)", F), ("(3,\\infty)", "x>3", T), ("(-\\infty, 0]", "x \\le 0", T), ("(-\\infty, 0]", "x < 0", F),
    ("[1,3]", "[1,2]\\cup[2,3]", T), ("(0,1)\\cup(1,2)", "(0,2)", F), ("[-36,104]", "[-36, 104]", T),
    ("[-36,104]", "[-46,104]", F), ("(-\\infty, 1) \\cup (1, \\infty)", "(-\\infty,1)\\cup(1,\\infty)", T),
    ("\\left(-\\infty, \\frac{1}{2}\\right]", "(-\\infty, 0.5]", T), ("\\left(-\\infty, \\frac{1}{2}\\right]", "(-\\infty, 0.5)", F),
    ("[2,5)", "[2,5)", T), ("[2,5)", "(2,5]", F),
]

TUPLES = [
    ("(1,2)", "(1, 2)", T), ("(1,2)", "(2,1)", F), ("(1,2)", "[1,2]", F), ("(1,2)", "\\{1,2\\}", F),
    ("(2,-1,2)", "(2, -1, 2)", T), ("(2,-1,2)", "(2,1,2)", F), ("\\left(\\frac34,5\\right)", "(0.75,5)", T),
    ("(-2,1)", "(-2, 1)", T), ("(-2,1)", "(1,-2)", F), ("(10,14,61)", "(10,14,61)", T), ("(10,14,61)", "(10,14)", F),
    ("\\left( -\\frac{2}{3}, -\\frac{7}{3}, \\frac{14}{9} \\right)", "(-2/3,-7/3,14/9)", T),
    ("\\left( -\\frac{2}{7}, -\\frac{34}{7} \\right)", "\\left( -\\frac{34}{7}, -\\frac{2}{7} \\right)", F),
    ("(5, -10)", "(5,-10)", T), ("(5,-10)", "(-5,10)", F), ("\\left(\\frac{17}{4},0\\right)", "(4.25, 0)", T),
    ("(1,3)", "(1,3)", T), ("(1,-1,1)", "(1,-1,-1)", F), ("(\\sqrt2, 1)", "(\\frac{2}{\\sqrt2}, 1)", T),
    ("(0,0)", "(0, 0)", T),
]

SETS = [
    ("1,2", "2,1", T), ("\\{1,2\\}", "\\{2,1\\}", T), ("\\{1,2\\}", "2,1", T), ("1,2", "1,2,3", F), ("1,2", "1", F),
    ("\\sqrt{5}, -\\sqrt{5}", "-\\sqrt5,\\sqrt5", T), ("\\frac{1}{5}, -\\frac{1}{3}", "-\\frac13, \\frac15", T),
    ("\\frac{1}{5}, -\\frac{1}{3}", "\\frac15, \\frac13", F), ("19 \\text{ and }43", "19, 43", T),
    ("19 \\text{ and }43", "43,19", T), ("\\{1,2,3\\}", "\\{1,2,3\\}", T), ("\\emptyset", "\\{\\}", T),
    ("x=1,x=2", "1,2", T), ("-2,1", "1,-2", T), ("-2,1", "2,-1", F), ("7, -2, \\text{ and } -5", "-5,-2,7", T),
    ("7, -2, \\text{ and } -5", "-5,2,7", F), ("\\sqrt{67}, -\\sqrt{85}", "-\\sqrt{85}, \\sqrt{67}", T),
    ("1+\\sqrt 2,\\ 1-\\sqrt 2,\\ 2+\\sqrt 3,\\ 2-\\sqrt 3", "2-\\sqrt3,2+\\sqrt3,1-\\sqrt2,1+\\sqrt2", T),
    ("1, 3", "1 \\text{ or } 3", T), ("\\{-1, 1\\}", "\\{1\\}", F), ("1, 2, 3", "3, 2, 1", T),
]

MATRICES = [
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", T),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}", T),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1,2)", T),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", F),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", F),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", T),
    ("\\begin{pmatrix} 2/5 \\\\ -1/5 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} \\frac25 \\\\ -\\frac15 \\\\ 0 \\end{pmatrix}", T),
    ("\\begin{pmatrix} 2/5 \\\\ -1/5 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} 0.4 \\\\ -0.2 \\\\ 0 \\end{pmatrix}", T),
    ("\\begin{pmatrix} 2/5 \\\\ -1/5 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} 2/5 \\\\ 1/5 \\\\ 0 \\end{pmatrix}", F),
    ("\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}", "(-2,-14,-7)", T),
    ("\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}", "(-2,-14)", F),
    ("\\begin{pmatrix} 3 & -3 \\\\ 4 & -2 \\end{pmatrix}", "\\begin{bmatrix} 3 & -3 \\\\ 4 & -2 \\end{bmatrix}", T),
    ("\\begin{pmatrix} 3 & -3 \\\\ 4 & -2 \\end{pmatrix}", "\\begin{pmatrix} 3 & -3 \\\\ 4 & 2 \\end{pmatrix}", F),
    ("\\begin{pmatrix} 1/\\sqrt{2} & 1/\\sqrt{2} \\\\ -1/\\sqrt{2} & 1/\\sqrt{2} \\end{pmatrix}",
     "\\begin{pmatrix} \\frac{\\sqrt2}{2} & \\frac{\\sqrt2}{2} \\\\ -\\frac{\\sqrt2}{2} & \\frac{\\sqrt2}{2} \\end{pmatrix}", T),
    ("\\begin{pmatrix} 0 & 1 \\\\ 1 & 0 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", F),
    ("\\begin{pmatrix} 6 \\\\ -15 \\end{pmatrix}", "\\left(\\begin{array}{c} 6 \\\\ -15 \\end{array}\\right)", T),
    ("\\begin{pmatrix} 6 \\\\ -15 \\end{pmatrix}", "\\begin{pmatrix} 6 \\\\ -15 \\\\ 0 \\end{pmatrix}", F),
]

COMPLEX = [
    ("1+2i", "2i+1", T), ("1+2i", "1-2i", F), ("116 - 75i", "116-75i", T), ("\\frac{i}{5}", "0.2i", T),
    ("\\frac{i}{5}", "\\frac{1}{5}i", T), ("-2 + 7i", "7i-2", T), ("3+4i", "(3,4)", F), ("5-10i", "5 - 10 i", T),
    ("2i", "-2i", F), ("1+i", "\\frac{2}{1-i}", T), ("i", "-i", F), ("-1", "i^2", T), ("3-4i", "(1-2i)^2", F),
    ("-3-4i", "(1-2i)^2", T), ("\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i", "\\frac{1+i\\sqrt3}{2}", T),
]

PLUS_MINUS = [
    ("\\pm 2", "2,-2", T), ("\\pm2", "-2, 2", T), ("\\pm 2", "2", F), ("1\\pm\\sqrt2", "1+\\sqrt2, 1-\\sqrt2", T),
    ("1\\pm\\sqrt{2}", "1+\\sqrt2", F), ("2, -2", "\\pm 2", T), ("\\frac{-1\\pm\\sqrt5}{2}", "\\frac{-1+\\sqrt5}{2},\\frac{-1-\\sqrt5}{2}", T),
    ("\\pm 3i", "3i, -3i", T), ("\\pm 3i", "3i, 3", F), ("3\\pm\\sqrt{7}", "3-\\sqrt7,3+\\sqrt7", T),
    ("3\\pm\\sqrt{7}", "-3\\pm\\sqrt7", F), ("x=\\pm 1", "1,-1", T),
]

TEXT = [
    ("\\text{Navin}", "Navin", T), ("\\text{Navin}", "navin", T), ("\\text{Navin}", "Luna", F), ("\\text{even}", "even", T),
    ("\\text{even}", "odd", F), ("\\text{E}", "E", T), ("\\text{E}", "(E)", T), ("\\text{E}", "D", F),
    ("D", "\\text{(D)}", T), ("\\text{Monday}", "Monday", T), ("\\text{Monday}", "\\text{Tuesday}", F),
    ("\\text{neither}", "\\text{neither}", T), ("\\text{(C)}", "C", T), ("\\text{(C)}", "(C)", T), ("\\text{(C)}", "A", F),
    ("\\text{east}", "East", T), ("\\text{A, C}", "A, C", T), ("\\text{A, C}", "A, D", F), ("\\text{yes}", "\\text{no}", F),
]

DECIMAL_APPROX = [
    ("13.18", "13.180", T), ("13.18", "13.2", F), ("0.43", "\\frac{3}{7}", T), ("0.43", "0.42", F), ("0.43", "0.4", F),
    ("3.21", "3.21", T), ("228.3", "228.30", T), ("228.3", "228.4", F), ("4.95", "4.9", F), ("1.3", "1.33", F),
    ("2.2", "\\sqrt{5}", T), ("2.2", "\\sqrt{6}", F), ("0.076", "0.0760", T), ("0.076", "0.76", F),
    ("96.8", "96.8", T), ("16.75", "\\frac{67}{4}", T), ("3.14", "\\pi", T), ("3.14", "\\frac{22}{7}", T),
    ("3.14", "3.1", F), ("0.3", "0.30", T),
]

EXTRACTION = [
    ("\\frac{3}{4}", "So the answer is $\\boxed{\\frac{3}{4}}$.", T),
    ("\\frac{\\sqrt{3}}{2}", "Thus $\\sin 60^\\circ = \\boxed{\\frac{\\sqrt{3}}{2}}$.", T),
    ("5", "The total is $\\boxed 5$.", T), ("7", "We get \\fbox{7} apples.", T),
    ("5 - 10i, 11, -3 + 6i", "First $\\boxed{5 - 10i}$, then $\\boxed{11}$, and finally $\\boxed{-3 + 6i}$.", T),
    ("-2, 1", "The roots are $\\boxed{-2}$ and $\\boxed{1}$.", T),
    ("-2, 1", "The roots are $\\boxed{-2}$ and $\\boxed{3}$.", F),
    ("7", "Adding up, the final answer is 7.", T), ("\\frac12", "The final answer is $\\frac{1}{2}$.", T),
    ("12", "I think it is \\boxed{13}.", F), ("4", "First \\boxed{3}... wait, actually it is \\boxed{4}.", T),
    ("3", "First \\boxed{3}... wait, actually it is \\boxed{4}.", F), ("9", "I do not know.", F),
    ("\\{1,2\\}", "The set is $\\boxed{\\{1,2\\}}$", T), ("(1,2]", "so $x \\in \\boxed{(1,2]}$.", T),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "We find $\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$.", T),
    ("10", "The answer is $\\boxed{\\boxed{10}}$", T), ("\\frac{1}{2}", "The answer: $\\boxed{\\dfrac{1}{2}}$", T),
    ("2", "Since $x=2$, the answer is $\\boxed{x=2}$.", T), ("30^\\circ", "so the angle is $\\boxed{30^{\\circ}}$.", T),
]

CATEGORIES: dict[str, list[tuple[str, str, bool]]] = {
    "numbers": NUMBERS,
    "fractions_decimals": FRACTIONS_DECIMALS,
    "formatting": FORMATTING,
    "constants_sci": CONSTANTS_SCI,
    "radicals": RADICALS,
    "expressions": EXPRESSIONS,
    "equations": EQUATIONS,
    "intervals": INTERVALS,
    "tuples": TUPLES,
    "sets": SETS,
    "matrices": MATRICES,
    "complex": COMPLEX,
    "plus_minus": PLUS_MINUS,
    "text": TEXT,
    "decimal_approx": DECIMAL_APPROX,
    "extraction": EXTRACTION,
}

CASES: list[tuple[str, str, str, bool]] = [
    (cat, gold, pred, expected) for cat, rows in CATEGORIES.items() for gold, pred, expected in rows
]


def as_response(category: str, pred: str) -> str:
    """The model response to grade: the prediction itself for ``extraction``, else it in a box."""
    return pred if category == "extraction" else "The answer is $\\boxed{" + pred + "}$."
