"""Applies an export of `logredact export-rules` to a text as the product
would, by its documented semantics, and prints each match and the product's
verdict on it: one JSON object per line, {"rule", "offset", "verdict"}, the
offset in bytes of the UTF-8 text (as logredact's audit records give it).

The evaluator reads only the export, never logredact's configuration: what
it finds is what the exported file says. Each product's rules are applied
independently of the other rules (as the products do).

  purview  Each Entity's IdMatch regex (Python re on Unicode text, whose \\b
           and \\w count non-ASCII letters, as Boost does on Unicode text);
           each Pattern's Match and Any elements over the text within
           patternsProximity characters before and after the match ("the
           window extending to the left and right of the IdMatch"); Keyword
           groups with matchStyle="word" as whole words, case-insensitive.
           Verdict: the highest confidenceLevel among the satisfied patterns.
  gcp-dlp  Each custom info type's regex in RE2 (google-re2), at its base
           likelihood; its hotword rules in order, a hotword anywhere in the
           window windowBefore/windowAfter characters around the finding
           ("the finding itself will be included in the window") setting the
           fixed likelihood; then the rule sets' exclusion rules: a hotword in
           the window, or the finding fully matching a regex
           (MATCHING_TYPE_FULL_MATCH), exclude it. Verdict: the likelihood,
           "excluded", or "below-minimum" under minLikelihood.
  macie    Each request's regex (Python re with ASCII \\b and \\w, as PCRE
           without Unicode properties); a match containing an ignore word
           (case-sensitive) is "ignored"; with keywords, a match is
           "reported" only if a keyword (case-insensitive; Macie does not
           document whole words, so anywhere) ends before the match and at
           most maximumMatchDistance characters before the match's end
           ("no-keyword" otherwise). Without keywords every match is
           "reported".

A window is cut out of the text and searched on its own, so that its edges
count as word boundaries: where the products do not document it, the
evaluator does as logredact does.

Usage: evaluate.py FORMAT EXPORT TEXT
"""

import itertools
import json
import re
import sys
import xml.etree.ElementTree as ElementTree

MCE = "{http://schemas.microsoft.com/office/2011/mce}"
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def window(text, start, end, before, after):
    return text[max(0, start - before) : end + after]


def purview(path, text):
    root = ElementTree.parse(path).getroot()
    rules = root.find(f"{MCE}Rules")
    regexes = {r.get("id"): re.compile(r.text) for r in rules.findall(f"{MCE}Regex")}
    keywords = {}
    for keyword in rules.findall(f"{MCE}Keyword"):
        finders = []
        for group in keyword.findall(f"{MCE}Group"):
            whole_word = group.get("matchStyle", "word") == "word"
            for term in group.findall(f"{MCE}Term"):
                flags = 0 if term.get("caseSensitive") == "true" else re.IGNORECASE
                body = re.escape(term.text)
                finders.append(re.compile(rf"(?<!\w){body}(?!\w)" if whole_word else body, flags))
        keywords[keyword.get("id")] = finders
    names = {
        resource.get("idRef"): resource.find(f"{MCE}Name").text
        for resource in rules.iter(f"{MCE}Resource")
    }

    def count(reference, context):
        return sum(len(finder.findall(context)) for finder in keywords[reference])

    def satisfied(element, context):
        if element.tag == f"{MCE}Match":
            return count(element.get("idRef"), context) >= int(element.get("minCount", "1"))
        if element.tag == f"{MCE}Any":
            hits = sum(satisfied(child, context) for child in element)
            high = element.get("maxMatches")
            return int(element.get("minMatches", "1")) <= hits and (high is None or hits <= int(high))
        return True  # IdMatch

    for entity in rules.findall(f"{MCE}Entity"):
        proximity = int(entity.get("patternsProximity"))
        patterns = entity.findall(f"{MCE}Pattern")
        id_matches = {p.find(f"{MCE}IdMatch").get("idRef") for p in patterns}
        for id_match in sorted(id_matches):
            for match in regexes[id_match].finditer(text):
                context = window(text, match.start(), match.end(), proximity, proximity)
                levels = [
                    int(p.get("confidenceLevel"))
                    for p in patterns
                    if p.find(f"{MCE}IdMatch").get("idRef") == id_match
                    and all(satisfied(child, context) for child in p)
                ]
                if levels:
                    yield names[entity.get("id")], match, str(max(levels))


LIKELIHOODS = ["VERY_UNLIKELY", "UNLIKELY", "POSSIBLE", "LIKELY", "VERY_LIKELY"]


def gcp(path, text):
    import re2

    config = json.load(open(path, encoding="utf-8"))["inspectTemplate"]["inspectConfig"]
    minimum = LIKELIHOODS.index(config.get("minLikelihood", "POSSIBLE"))
    exclusions = {}
    for rule_set in config.get("ruleSet", []):
        for info_type in rule_set["infoTypes"]:
            exclusions.setdefault(info_type["name"], []).extend(
                rule["exclusionRule"] for rule in rule_set["rules"] if "exclusionRule" in rule
            )
    for custom in config["customInfoTypes"]:
        name = custom["infoType"]["name"]
        regex = re2.compile(custom["regex"]["pattern"])
        base = custom.get("likelihood", "VERY_LIKELY")
        hotwords = [
            (
                re2.compile(rule["hotwordRule"]["hotwordRegex"]["pattern"]),
                rule["hotwordRule"]["proximity"],
                rule["hotwordRule"]["likelihoodAdjustment"]["fixedLikelihood"],
            )
            for rule in custom.get("detectionRules", [])
        ]
        for match in regex.finditer(text):
            likelihood = base
            for hotword, proximity, fixed in hotwords:
                around = window(text, match.start(), match.end(), proximity.get("windowBefore", 0), proximity.get("windowAfter", 0))
                if hotword.search(around):
                    likelihood = fixed
            verdict = likelihood
            for rule in exclusions.get(name, []):
                if "excludeByHotword" in rule:
                    hotword = rule["excludeByHotword"]
                    proximity = hotword["proximity"]
                    around = window(text, match.start(), match.end(), proximity.get("windowBefore", 0), proximity.get("windowAfter", 0))
                    if re2.compile(hotword["hotwordRegex"]["pattern"]).search(around):
                        verdict = "excluded"
                elif "regex" in rule:
                    pattern = re2.compile(rule["regex"]["pattern"])
                    full = rule["matchingType"] == "MATCHING_TYPE_FULL_MATCH"
                    hit = pattern.fullmatch(match.group()) if full else pattern.search(match.group())
                    if hit:
                        verdict = "excluded"
            if verdict != "excluded" and LIKELIHOODS.index(verdict) < minimum:
                verdict = "below-minimum"
            yield name, match, verdict


def macie(path, text):
    lowered = text.translate(ASCII_LOWER)
    for request in json.load(open(path, encoding="utf-8"))["customDataIdentifiers"]:
        regex = re.compile(request["regex"], re.ASCII)
        keywords = [keyword.translate(ASCII_LOWER) for keyword in request.get("keywords", [])]
        distance = request.get("maximumMatchDistance", 50)
        ignore = request.get("ignoreWords", [])
        for match in regex.finditer(text):
            if any(word in match.group() for word in ignore):
                verdict = "ignored"
            elif keywords:
                before = lowered[: match.start()]
                ends = [before.rfind(k) + len(k) for k in keywords if before.rfind(k) >= 0]
                near = any(match.end() - end <= distance for end in ends)
                verdict = "reported" if near else "no-keyword"
            else:
                verdict = "reported"
            yield request["name"], match, verdict


def main():
    form, path, text_path = sys.argv[1:4]
    text = open(text_path, encoding="utf-8").read()
    byte_offsets = [0, *itertools.accumulate(len(c.encode("utf-8")) for c in text)]
    evaluate = {"purview": purview, "gcp-dlp": gcp, "macie": macie}[form]
    out = sys.stdout
    for rule, match, verdict in evaluate(path, text):
        out.write(json.dumps({"rule": rule, "offset": byte_offsets[match.start()], "verdict": verdict}) + "\n")


if __name__ == "__main__":
    main()
