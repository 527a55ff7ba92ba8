"""Validates an export of `logredact export-rules` with each vendor's own
published definitions, installed from PyPI (tests/export/requirements.txt):

  purview  the rule package is well-formed XML in UTF-16, valid against the
           schema Microsoft publishes in "Create a custom sensitive information
           type using PowerShell" (purview-rule-package.xsd), and within the
           constraints that article and "Sensitive information type limits"
           state, which the schema does not encode.
  gcp-dlp  the template loads into google-cloud-dlp's InspectTemplate (the
           API's own message types: an unknown field or enum value is an
           error), its limits are those the types document, and every
           pattern compiles in RE2 (google-re2).
  macie    each request passes botocore's parameter validator against the
           macie2 service model's CreateCustomDataIdentifier input shape, and
           the limits the model documents (parsed from its documentation, not
           written down here); its patterns use only what Macie's PCRE subset
           takes.

Usage: validate.py FORMAT FILE. Prints what it checked; exits 1 with every
problem found.
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

HERE = os.path.dirname(os.path.abspath(__file__))
PROBLEMS = []


def problem(message):
    PROBLEMS.append(message)


# --- Microsoft Purview -------------------------------------------------------

MCE = "{http://schemas.microsoft.com/office/2011/mce}"

# "Create a custom sensitive information type using PowerShell", "Potential
# validation issues to be aware of", and "Sensitive information type limits".
MAX_REGEX_CHARS = 1024  # "Maximum length of regular expression"
MAX_TERM_CHARS = 50  # "Keywords have a maximum of 50 characters in Length"
MAX_TERMS = 2048  # "a maximum of 2048 keywords total"
MAX_REGEXES_PER_TYPE = 20  # "Maximum number of distinct regexes per SIT"
MAX_PACKAGE_BYTES = 770 * 1024  # "Keep the uploaded file limited to a 770 kilobyte maximum"
CONFIDENCE_LEVELS = {65, 75, 85}  # "a value among 65/75/85 indicating Low/Medium/High"


def regex_items(pattern):
    """The regex as (kind, depth, text, quantifier) items: kind is 'char',
    'any' (.), 'class', 'open', 'close', 'alt' or 'anchor'; quantifier is
    (min, max) with max None for unbounded, or None."""
    items = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            escaped = pattern[i : i + 2]
            kind = "anchor" if escaped in ("\\b", "\\B") else "char"
            if escaped == "\\x":
                escaped = pattern[i : i + 4]
            items.append([kind, depth, escaped, None])
            i += len(escaped)
            continue
        if c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            items.append(["class", depth, pattern[i : j + 1], None])
            i = j + 1
            continue
        if c == "(":
            j = i + 1
            if pattern.startswith("?:", j):
                j += 2
            items.append(["open", depth, pattern[i:j], None])
            depth += 1
            i = j
            continue
        if c == ")":
            depth -= 1
            items.append(["close", depth, ")", None])
            i += 1
            continue
        if c == "|":
            items.append(["alt", depth, "|", None])
            i += 1
            continue
        if c in "?*+{":
            if c == "{":
                j = pattern.index("}", i)
                bounds = pattern[i + 1 : j].split(",")
                low = int(bounds[0])
                high = low if len(bounds) == 1 else (int(bounds[1]) if bounds[1] else None)
                i = j + 1
            else:
                low, high = {"?": (0, 1), "*": (0, None), "+": (1, None)}[c]
                i += 1
            if i < len(pattern) and pattern[i] == "?":
                i += 1  # lazy
            if items:
                items[-1][3] = (low, high)
            continue
        items.append(["any" if c == "." else "char", depth, c, None])
        i += 1
    return items


def purview_regex_issues(pattern):
    """The article's "known issues that the validation checks for"."""
    issues = []
    if pattern.startswith("|") or re.search(r"(?<!\\)\|$", pattern):
        issues.append("begins or ends with the alternator |")
    items = regex_items(pattern)
    top = [item for item in items if item[1] == 0 and item[0] != "anchor"]
    for end in (top[:1], top[-1:]):
        for kind, _, text, quantifier in end:
            if kind == "any" and quantifier and quantifier[0] <= 1:
                issues.append(f"begins or ends with .{{{quantifier[0]},m}}")
    for index, (kind, depth, text, quantifier) in enumerate(items):
        if depth > 0 and kind in ("char", "any", "class") and quantifier and quantifier[0] <= 1:
            issues.append(f"{text} with a {{0,m}} or {{1,m}} repeater in a group")
        if kind == "close" and quantifier and quantifier[1] is None:
            issues.append("an unbounded repeater on a group")
    if re.search(r"\(\?<[=!]", pattern):
        issues.append("a lookbehind (must be of fixed length)")
    return issues


def validate_purview(path):
    import xmlschema

    data = open(path, "rb").read()
    if not data.startswith(b"\xff\xfe"):
        problem("the rule package is not UTF-16 with a byte-order mark (the article: save it with Unicode encoding)")
    text = data.decode("utf-16")
    if not text.startswith('<?xml version="1.0" encoding="utf-16"?>'):
        problem("the XML declaration does not say encoding utf-16")
    root = ElementTree.fromstring(data)  # well-formed, or this raises
    schema = xmlschema.XMLSchema(os.path.join(HERE, "purview-rule-package.xsd"))
    for error in schema.iter_errors(path):
        problem(f"schema: {error.reason} at {error.path}")
    if len(data) > MAX_PACKAGE_BYTES:
        problem(f"the package is {len(data)} bytes, over {MAX_PACKAGE_BYTES}")
    rules = root.find(f"{MCE}Rules")
    regexes = {r.get("id"): r.text or "" for r in rules.findall(f"{MCE}Regex")}
    keywords = {k.get("id"): k for k in rules.findall(f"{MCE}Keyword")}
    resources = {r.get("idRef") for r in rules.iter(f"{MCE}Resource")}
    for regex_id, pattern in regexes.items():
        if len(pattern) > MAX_REGEX_CHARS:
            problem(f"{regex_id}: {len(pattern)} characters, over {MAX_REGEX_CHARS}")
        for issue in purview_regex_issues(pattern):
            problem(f"{regex_id}: {issue}")
        try:
            re.compile(pattern)
        except re.error as error:
            problem(f"{regex_id}: does not compile: {error}")
    for keyword_id, keyword in keywords.items():
        for term in keyword.iter(f"{MCE}Term"):
            if len(term.text or "") > MAX_TERM_CHARS:
                problem(f"{keyword_id}: the term {term.text!r} is over {MAX_TERM_CHARS} characters")
    entities = rules.findall(f"{MCE}Entity")
    for entity in entities:
        name = entity.get("id")
        if entity.get("recommendedConfidence") is None:
            problem(f"entity {name}: no recommendedConfidence (the article: mandatory)")
        if name not in resources:
            problem(f"entity {name}: no LocalizedStrings resource")
        levels = [int(p.get("confidenceLevel")) for p in entity.findall(f"{MCE}Pattern")]
        if len(levels) != len(set(levels)):
            problem(f"entity {name}: two patterns with one confidence level")
        if not set(levels) <= CONFIDENCE_LEVELS:
            problem(f"entity {name}: confidence levels {levels}, not among 65/75/85")
        used_regexes = set()
        used_keywords = set()
        for pattern in entity.findall(f"{MCE}Pattern"):
            for reference in pattern.iter():
                ref = reference.get("idRef")
                if ref is None:
                    continue
                if ref in regexes:
                    used_regexes.add(ref)
                elif ref in keywords:
                    used_keywords.add(ref)
                else:
                    problem(f"entity {name}: {ref} is neither a Regex nor a Keyword of the package")
        if len(used_regexes) > MAX_REGEXES_PER_TYPE:
            problem(f"entity {name}: {len(used_regexes)} regexes, over {MAX_REGEXES_PER_TYPE}")
        terms = sum(len(list(keywords[ref].iter(f"{MCE}Term"))) for ref in used_keywords)
        if terms > MAX_TERMS:
            problem(f"entity {name}: {terms} terms, over {MAX_TERMS}")
    print(f"purview: {len(entities)} entities; well-formed UTF-16, schema-valid, within the article's constraints")


# --- Google Cloud DLP --------------------------------------------------------


def documented_max(doc, field):
    """A "(max N chars)" limit from a google-cloud-dlp type's documentation."""
    match = re.search(field + r" \(str\):\s+.*?\(max (\d+) chars\)", doc, re.S)
    if not match:
        problem(f"google-cloud-dlp documents no maximum for {field}")
        return None
    return int(match.group(1))


def validate_gcp(path):
    import re2
    from google.cloud import dlp_v2

    document = json.load(open(path, encoding="utf-8"))
    if set(document) != {"inspectTemplate", "notes"}:
        problem(f"top-level keys {sorted(document)}, expected inspectTemplate and notes")
    body = json.dumps(document["inspectTemplate"])
    # The API's message types: unknown fields and enum values raise.
    template = dlp_v2.InspectTemplate.from_json(body, ignore_unknown_fields=False)
    dlp_v2.CreateInspectTemplateRequest.from_json(
        json.dumps({"parent": "projects/example", "inspectTemplate": document["inspectTemplate"]}),
        ignore_unknown_fields=False,
    )
    doc = dlp_v2.InspectTemplate.__doc__
    for field, value in (("display_name", template.display_name), ("description", template.description)):
        limit = documented_max(doc, field)
        if limit is not None and len(value) > limit:
            problem(f"{field} is {len(value)} characters, over {limit}")
    name_pattern = re.search(r"``(\[A-Za-z0-9\$_-\]\{1,64\})``", dlp_v2.InfoType.__doc__).group(1)
    window_doc = dlp_v2.CustomInfoType.DetectionRule.HotwordRule.__doc__
    window_limit = int(re.search(r"cannot\s+exceed (\d+)\s+characters", window_doc).group(1))
    config = template.inspect_config
    names = set()

    def check_regex(where, pattern):
        try:
            re2.compile(pattern)
        except Exception as error:  # re2.error
            problem(f"{where}: does not compile in RE2: {error}")

    def check_proximity(where, proximity):
        if proximity.window_before + proximity.window_after > window_limit:
            problem(f"{where}: a window of {proximity.window_before} + {proximity.window_after}, over {window_limit}")

    for custom in config.custom_info_types:
        name = custom.info_type.name
        names.add(name)
        if not re.fullmatch(name_pattern, name):
            problem(f"info type name {name!r} does not match {name_pattern}")
        if custom.likelihood == dlp_v2.Likelihood.LIKELIHOOD_UNSPECIFIED:
            problem(f"{name}: no base likelihood (the API defaults to VERY_LIKELY)")
        check_regex(name, custom.regex.pattern)
        for rule in custom.detection_rules:
            check_regex(f"{name} hotword", rule.hotword_rule.hotword_regex.pattern)
            check_proximity(f"{name} hotword", rule.hotword_rule.proximity)
    for rule_set in config.rule_set:
        for info_type in rule_set.info_types:
            if info_type.name not in names:
                problem(f"a rule set names {info_type.name}, which no custom info type defines")
        for rule in rule_set.rules:
            exclusion = rule.exclusion_rule
            if exclusion.matching_type == dlp_v2.MatchingType.MATCHING_TYPE_UNSPECIFIED:
                problem("an exclusion rule without a matching type")
            if "exclude_by_hotword" in exclusion:
                check_regex("exclusion hotword", exclusion.exclude_by_hotword.hotword_regex.pattern)
                check_proximity("exclusion hotword", exclusion.exclude_by_hotword.proximity)
            if "regex" in exclusion:
                check_regex("exclusion regex", exclusion.regex.pattern)
    check_notes(document["notes"])
    print(f"gcp-dlp: {len(names)} custom info types; loaded by google-cloud-dlp's InspectTemplate, patterns compiled by RE2")


# --- Amazon Macie ------------------------------------------------------------


def documented(doc, pattern, what):
    match = re.search(pattern, doc)
    if not match:
        problem(f"the macie2 model documents no {what} (the tests need updating)")
        return None
    return tuple(int(group) for group in match.groups())


def macie_pattern_issues(pattern):
    """What Macie's PCRE subset does not take ("Detection criteria": no
    backreferences, capturing groups, conditionals, embedded code, flags,
    recursion, lookaround)."""
    issues = []
    for index, char in enumerate(pattern):
        if char != "(" or (index > 0 and pattern[index - 1] == "\\" and pattern[index - 2 : index] != "\\\\"):
            continue
        if not pattern.startswith("?:", index + 1):
            issues.append(f"a group that is not (?: at {index}: {pattern[index:index + 4]!r}")
    if re.search(r"\\[1-9]|\\k<", pattern):
        issues.append("a backreference")
    return issues


def validate_macie(path):
    import botocore.session
    from botocore.validate import ParamValidator

    document = json.load(open(path, encoding="utf-8"))
    if set(document) != {"customDataIdentifiers", "notes"}:
        problem(f"top-level keys {sorted(document)}, expected customDataIdentifiers and notes")
    model = botocore.session.get_session().get_service_model("macie2")
    shape = model.operation_model("CreateCustomDataIdentifier").input_shape
    docs = {name: member.documentation for name, member in shape.members.items()}
    limits = {
        "name": documented(docs["name"], r"as many as (\d+) characters", "name length"),
        "description": documented(docs["description"], r"as many as (\d+) characters", "description length"),
        "regex": documented(docs["regex"], r"as many as (\d+) characters", "regex length"),
        "keywords": documented(docs["keywords"], r"as many as (\d+) keywords", "keyword count"),
        "keyword": documented(docs["keywords"], r"(\d+)-(\d+) UTF-8 characters", "keyword length"),
        "ignoreWords": documented(docs["ignoreWords"], r"as many as (\d+) ignore words", "ignore word count"),
        "ignoreWord": documented(docs["ignoreWords"], r"(\d+)-(\d+) UTF-8 characters", "ignore word length"),
        "distance": documented(docs["maximumMatchDistance"], r"distance can be (\d+)-(\d+) characters", "match distance"),
    }
    severity_shape = shape.members["severityLevels"].member
    severities = severity_shape.members["severity"].enum
    if "as many as three" not in docs["severityLevels"]:
        problem("the macie2 model no longer documents at most three severity levels")
    validator = ParamValidator()
    names = set()
    requests = document["customDataIdentifiers"]
    for request in requests:
        name = request.get("name")
        report = validator.validate(request, shape)
        if report.has_errors():
            problem(f"{name}: {report.generate_report()}")
        if name in names:
            problem(f"two identifiers named {name}")
        names.add(name)
        for field in ("name", "description", "regex"):
            if limits[field] and len(request.get(field, "")) > limits[field][0]:
                problem(f"{name}: {field} over {limits[field][0]} characters")
        for field, count, length in (("keywords", "keywords", "keyword"), ("ignoreWords", "ignoreWords", "ignoreWord")):
            words = request.get(field, [])
            if limits[count] and len(words) > limits[count][0]:
                problem(f"{name}: {len(words)} {field}, over {limits[count][0]}")
            for word in words:
                if limits[length] and not limits[length][0] <= len(word) <= limits[length][1]:
                    problem(f"{name}: {field} entry {word!r} is not {limits[length][0]}-{limits[length][1]} characters")
        distance = request.get("maximumMatchDistance")
        if distance is not None and limits["distance"]:
            low, high = limits["distance"]
            if not low <= distance <= high:
                problem(f"{name}: maximumMatchDistance {distance} is not {low}-{high}")
        levels = request.get("severityLevels", [])
        if len(levels) > 3:
            problem(f"{name}: more than three severity levels")
        for level in levels:
            if level["severity"] not in severities:
                problem(f"{name}: severity {level['severity']} is not one of {severities}")
        thresholds = [level["occurrencesThreshold"] for level in levels]
        if thresholds != sorted(thresholds):
            problem(f"{name}: occurrence thresholds not in ascending order")
        for issue in macie_pattern_issues(request["regex"]):
            problem(f"{name}: {issue}")
        try:
            re.compile(request["regex"], re.ASCII)
        except re.error as error:
            problem(f"{name}: the regex does not compile: {error}")
    check_notes(document["notes"])
    print(f"macie: {len(requests)} CreateCustomDataIdentifier requests; botocore's validator and the macie2 model's documented limits")


def check_notes(notes):
    for note in notes:
        if set(note) != {"rule", "code", "message"} or not note["message"]:
            problem(f"a malformed note: {note}")


def main():
    form, path = sys.argv[1], sys.argv[2]
    try:
        {"purview": validate_purview, "gcp-dlp": validate_gcp, "macie": validate_macie}[form](path)
    except Exception as error:  # a parser's refusal: reported with the rest
        problem(f"{type(error).__name__}: {error}")
    if PROBLEMS:
        for message in PROBLEMS:
            print(f"PROBLEM: {message}")
        sys.exit(1)


if __name__ == "__main__":
    main()
