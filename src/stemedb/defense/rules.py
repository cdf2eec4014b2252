"""The rule table of the injection scanner, and the English rules.

A rule is a family name, trigger words or substrings, and a regular expression over the
folded text (see ``text.fold``). Any match must contain one of the triggers, so the
scanner runs a rule's regex only when a trigger is present. Patterns are lower-case
(the text is case-folded) and bounded, so no input makes a match slower than linear.
Rules for other languages are in ``rules_i18n``.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from .text import fold_literal, fold_pattern


@dataclass(frozen=True)
class Rule:
    family: str
    words: frozenset[str]
    also: tuple[frozenset[str], ...]
    subs: tuple[str, ...]
    regex: re.Pattern[str]
    inner: tuple[re.Pattern[str], ...] = ()

    def matches(self, folded: str) -> bool:
        """The regex matches; with ``inner`` patterns, the regex only cuts segments
        (non-overlapping, so the cost stays linear in the text) and every inner pattern
        must be found in one of them."""
        if not self.inner:
            return self.regex.search(folded) is not None
        for m in self.regex.finditer(folded):
            segment = m.group()
            if all(rx.search(segment) for rx in self.inner):
                return True
        return False

    def gate(self, present: AbstractSet[str], folded: str) -> bool:
        """True when every trigger group is present in the text."""
        if self.words and self.words.isdisjoint(present):
            return False
        for group in self.also:  # loops, not any(): this runs for every candidate rule
            if group.isdisjoint(present):
                return False
        return not self.subs or any(s in folded for s in self.subs)


RULES: list[Rule] = []


def _group(words: str) -> frozenset[str]:
    w = frozenset(fold_literal(x) for x in words.split())
    if not all(x.isalpha() for x in w):  # triggers are compared with letter runs
        raise ValueError(f"a trigger word is not all letters: {sorted(w)}")
    return w


def add_rule(
    family: str,
    pattern: str,
    *,
    words: str = "",
    also: tuple[str, ...] = (),
    subs: str = "",
    inner: tuple[str, ...] = (),
) -> None:
    """Register a rule.

    ``words``: space-separated trigger words, one of which must occur; each of ``also``
    is one more such group that must occur too; ``subs``: ``|``-separated substrings, one
    of which must occur (symbols, and languages written without spaces). Patterns are
    lower-case (the text is case-folded). With ``inner``, ``pattern`` only cuts the
    segments in which each inner pattern must be found (see ``Rule.matches``).
    """
    if re.search(r"\\[A-Z]", pattern):  # \S \W \B would be read against folded text
        raise ValueError(f"upper-case escape in a {family} rule")
    s = tuple(fold_literal(x) for x in subs.split("|") if x)
    if not words and not s:
        raise ValueError(f"a {family} rule has no trigger")
    regex = re.compile(fold_pattern(pattern))
    inner_rx = tuple(re.compile(fold_pattern(p)) for p in inner)
    RULES.append(Rule(family, _group(words), tuple(_group(g) for g in also), s, regex, inner_rx))


_rule = add_rule

# --- English ---------------------------------------------------------------------------

_OVERRIDE_VERBS = (
    "ignore ignoring disregard disregarding forget forgetting override overriding bypass "
    "bypassing skip neglect discard abandon aside follow following"
)
_OVERRIDE_NOUNS = (
    "instructions instruction directions directives directive guidelines guideline rules "
    "prompts prompt commands orders context constraints guardrails policy policies "
    "programming training messages restrictions limitations settings configuration "
    "conversation text content input everything guidance directions"
)
_OVERRIDE_MODIFIERS = (
    "previous prior preceding above earlier foregoing former all your system developer "
    "safety aforementioned mentioned default built hidden"
)
_MODIFIER = (
    r"(?:all|any|of|the|your|my|its|these|those|every|other|existing|current|given|original|"
    r"initial|old|earlier|above|prior|previous|preceding|foregoing|former|system|developer|"
    r"safety|above-mentioned|aforementioned|default|built-in|hidden)"
)
_STRONG_MODIFIER = (
    r"(?:previous|prior|preceding|above|earlier|foregoing|former|all|your|system|developer|"
    r"safety|aforementioned|above-mentioned|default|built-in|hidden)"
)
_rule(
    "override_instructions",
    # Up to six modifiers, one of them strong ("all", "previous", "your"...): bounded, so
    # a long run of modifiers cannot make the match quadratic.
    r"\b(?:ignore|ignoring|disregard|disregarding|forget|forgetting|override|overriding|"
    r"bypass|bypassing|skip|neglect|discard|abandon|set\s+aside|do\s+not\s+follow|"
    r"don'?t\s+follow|stop\s+following)"
    rf"(?=(?:\s+{_MODIFIER}){{0,5}}?\s+{_STRONG_MODIFIER}\b)"
    rf"(?:\s+{_MODIFIER}){{1,6}}\s+"
    r"(?:instructions?|directions|directives?|guidelines?|rules|prompts?|commands|orders|"
    r"context|constraints|guardrails|polic(?:y|ies)|programming|training|messages|"
    r"restrictions|limitations|settings|configuration|system\s+prompt|conversation|text|"
    r"content|input|everything|guidance)\b",
    words=_OVERRIDE_VERBS,
    also=(_OVERRIDE_NOUNS, _OVERRIDE_MODIFIERS),
)
_rule(
    "override_instructions",
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+|what\s+(?:was|is)\s+"
    r"(?:said|written)\s+|what\s+you\s+(?:were|have\s+been|'ve\s+been)\s+told\s+)?"
    r"(?:the\s+|that\s+)?(?:above|before|prior|earlier|previously|until\s+now|so\s+far)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:all|everything)\s+(?:that\s+)?you\s+"
    r"(?:were|have\s+been|'ve\s+been|know|knew|learned)\b",
    words="ignore disregard forget",
    also=("above before prior earlier previously now far all everything",),
)
_rule(
    "role_reassignment",
    r"\byou(?:\s+are|'re|re)\s+(?:now|no\s+longer|from\s+now\s+on|henceforth)\s+"
    r"(?:a|an|my|called|named|known|acting|playing|operating|free|unrestricted|unfiltered|"
    r"uncensored|unbound|jailbroken|evil|dan|going\s+to|bound|allowed|able\s+to\s+"
    r"(?:ignore|bypass)|in\s+(?:developer|dev|god|admin|debug|dan|jailbreak|unrestricted)"
    r"\s+mode)\b"
    r"|\byou\s+will\s+now\s+(?:act|behave|respond|answer|pretend|roleplay|role-play|be)\b",
    words="now longer henceforth",
    also=("you youre",),
)
_rule(
    "role_reassignment",
    r"\b(?:act|behave|respond)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?"
    r"(?:unrestricted|unfiltered|uncensored|jailbroken|evil|dan\b|ai\s+without|"
    r"assistant\s+without|model\s+without)"
    r"|\b(?:role-?play|roleplay)\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|evil|dan\b)",
    words="unrestricted unfiltered uncensored jailbroken evil dan without",
    also=("act behave respond roleplay role play",),
)
_rule(
    "role_reassignment",
    r"\bpretend\s+(?:that\s+)?(?:you\s+are|you're|to\s+be)\s+(?:an?\s+)?(?:different\s+)?"
    r"(?:unrestricted|unfiltered|uncensored|jailbroken|evil|dan\b|ai|assistant|"
    r"language\s+model|chatbot|system|developer|administrator)",
    words="pretend",
    also=("you be",),
)
_rule(
    "role_reassignment",
    r"\byour\s+new\s+(?:role|persona|identity|name|instructions|task|goal|objective|"
    r"purpose|directive|rules)\s+(?:is|are)\b",
    words="new",
    also=(
        "your",
        "role persona identity name instructions task goal objective purpose directive rules",
    ),
)
_rule(
    "standing_order",
    r"\b(?:from\s+now\s+on|henceforth|going\s+forward|starting\s+now|from\s+this\s+point"
    r"(?:\s+on(?:ward)?)?|(?:in|for)\s+(?:all\s+)?future\s+(?:queries|questions|responses|"
    r"answers|conversations|sessions|interactions|replies|chats))[\s,:]+"
    r"(?:you\s+(?:will|must|should|shall|are|'re|answer|respond|reply|say|always|never|only|"
    r"act|behave|refer|recommend|ignore|tell|treat|claim|state|describe)\b|"
    r"(?:always|never)\s+(?:respond|reply|answer|say|tell|claim|state|refer|recommend|"
    r"describe|treat|ignore|call|output|mention|cite|insist|direct|redirect|send|point|link|"
    r"route|forward|include|add|use|trust|suggest|promote)\b|"
    r"(?:respond|reply|answer|say|claim|refer)\s+(?:only\s+)?(?:with|that|to|as)\b)",
    words="now henceforth forward starting point future",
    also=("you always never respond reply answer say claim refer",),
)
_rule(
    "standing_order",
    r"\b(?:respond|reply|answer)\s+(?:only\s+)?(?:with|in|by)\b[^.\n]{0,60}?\b(?:to|for)\s+"
    r"(?:every|all|any|each)\s+(?:other\s+)?(?:questions?|quer(?:y|ies)|requests?|messages?|"
    r"prompts?|users?)\b"
    r"|\b(?:to|for)\s+(?:every|all|any|each)\s+(?:questions?|quer(?:y|ies)|requests?|messages?|"
    r"prompts?)\s*,?\s*(?:always\s+|only\s+)?(?:respond|reply|answer|say)\b",
    words="respond reply answer say",
    also=(
        "every all any each",
        "question questions query queries request requests message "
        "messages prompt prompts users user",
    ),
)
_rule(
    "override_instructions",
    r"\b(?:new|updated|revised|real|actual|true|hidden|secret|additional|important|urgent|"
    r"override)\s+(?:system\s+)?(?:instructions?|directives?|orders|prompt)\s*:",
    words="new updated revised real actual true hidden secret additional important urgent override",
    also=("instructions instruction directives directive orders prompt",),
    subs=":",
)
_rule(
    "conditional_answer",
    r"\b(?:when(?:ever)?|if|once|should)\s+(?:you\s+are\s+|you're\s+|you\s+get\s+|anyone\s+|"
    r"someone\s+|somebody\s+|a\s+user\s+|the\s+user\s+|users\s+|people\s+|it\s+is\s+|"
    r"you\s+)?(?:asked|ask|asks|queried|questioned|prompted)\b[^.\n]{0,100}?"
    r"(?:,\s*|\bthen\s+|\byou\s+(?:must|should|will|shall)\s+(?:always\s+)?|"
    r"\b(?:always|just|only)\s+)"
    r"(?:answer|reply|respond|say|state|claim|tell\s+(?:them|the\s+user|users)|insist|"
    r"output|return|recommend|redirect|point\s+(?:them|users)|deny)\b",
    words="asked ask asks queried questioned prompted",
    also=(
        (
            "answer reply respond say state claim tell insist output return recommend redirect "
            "point deny"
        ),
    ),
)
_rule(
    "concealment",
    r"\b(?:do\s+not|don'?t|never|must\s+not|should\s+not|shall\s+not)\s+(?:ever\s+)?"
    r"(?:tell|inform|alert|warn|notify|let|reveal\s+(?:this\s+|it\s+)?to|"
    r"mention\s+(?:this\s+|it\s+)?to|disclose\s+(?:this\s+|it\s+)?to|show\s+(?:this\s+)?to)"
    r"\s+(?:the\s+|your\s+|any\s+)?(?:end\s+)?(?:user|users|human|humans|operator|operators|"
    r"admin|admins|administrator|reviewer|reviewers|moderator|moderators)\b",
    words="user users human humans operator operators admin admins administrator reviewer "
    "reviewers moderator moderators",
    also=("not don dont never", "tell inform alert warn notify let reveal mention disclose show"),
)
_rule(
    "concealment",
    r"\bkeep\s+(?:this|it|these\s+instructions|this\s+instruction)\s+(?:a\s+)?"
    r"(?:secret|hidden|confidential)\s+from\b"
    r"|\b(?:do\s+not|don'?t|never)\s+(?:reveal|mention|disclose|repeat|acknowledge|"
    r"reference|admit|explain)\s+(?:these|this|your|the)\s+(?:hidden\s+|secret\s+)?"
    r"(?:instructions?|message|prompt|rules|note|directive|order)\b",
    words="secret hidden confidential instructions instruction message prompt rules note "
    "directive order",
    also=("keep not don dont never",),
)
_rule(
    "context_delimiter",
    r"</?\s*(?:context|system|system_prompt|system-prompt|sys|instructions?|prompt|"
    r"assistant|human|document|documents|untrusted(?:[_-][a-z]+)?|trusted(?:[_-][a-z]+)?|"
    r"tool[_-](?:output|result|response|call)|function[_-](?:results?|call)|memory|"
    r"search[_-]results?|retrieved[_-]\w+|admin|developer|im_start|im_end|"
    r"start_of_turn|end_of_turn|endoftext)\s*>"
    r"|\[/?\s*(?:inst|sys)\s*\]"
    r"|<<\s*/?\s*sys\s*>>",
    subs="<|[",
)
_rule(
    "context_delimiter",
    r"\b(?:end|begin)\s+of\s+(?:the\s+)?(?:system\s+prompt|system\s+message|"
    r"user\s+input|untrusted\s+(?:input|content|data)|context\s+window|instructions)\b",
    words="end begin",
    also=("prompt message input content data window instructions",),
)
_rule("chat_template", r"<\|\s*[a-z_]+\s*\|>", subs="<|")
_rule(
    "chat_template",
    r"(?<!#)#{2,}+[ \t]{0,20}(?:instruction|instructions|system|system\s+prompt|new\s+instructions?|"
    r"response|assistant)\s*:",
    subs="##",
)
_rule(
    "chat_template",
    r"(?:^|[\n\"'])[ \t]{0,20}(?:system|assistant)\s*:\s*(?:you\s+are|you're|ignore|from\s+now|"
    r"new\s+(?:rules|instructions)|the\s+user)\b"
    r"|\bsystem\s+(?:override|notice|message|instruction|alert|update)\s*:\s*"
    r"(?:you|ignore|from|all|the\s+(?:assistant|ai|model|agent))\b",
    words="system assistant",
)
_rule(
    "prompt_extraction",
    # "never share your password" is advice to people, not an extraction attempt
    r"(?<!never\s)(?<!not\s)(?<!n't\s)"
    r"\b(?:(?:reveal|print(?:\s+out)?|show|display|output|repeat|leak|dump|share|disclose|"
    r"tell\s+me|give\s+me|send\s+me|reproduce|recite|write\s+out|spell\s+out|list)\s+"
    r"(?:me\s+|us\s+)?"
    r"(?:(?:your|the\s+(?:text\s+of\s+)?your)\s+(?:\w+\s+)?(?:system\s+prompt|prompt|"
    r"instructions|rules|guidelines|configuration|memory|initial\s+message|context)"
    r"|(?:the|all|any)\s+(?:\w+\s+)?(?:system\s+prompt|system\s+message|hidden\s+"
    r"(?:instructions|prompt|rules)|initial\s+prompt|pre-?prompt|secret\s+instructions))"
    r"|(?:reveal|print|display|output|leak|dump|disclose|list|recite)\s+(?:me\s+)?"
    r"(?:your|the|all|any)\s+(?:\w+\s+)?(?:api\s+keys?|secret\s+keys?|secrets|credentials|"
    r"passwords?|tokens))\b",
    words="prompt preprompt instructions rules guidelines configuration key keys secret "
    "secrets credentials password passwords memory message context token tokens",
    also=(
        (
            "reveal print show display output repeat leak dump share disclose tell give send "
            "reproduce recite write spell list"
        ),
    ),
)
_rule(
    "exfiltration",
    r"\b(?:send|post|upload|forward|transmit|leak|exfiltrate|e-?mail|mail|submit|copy|"
    r"append|include|embed|encode|paste|report|attach|pass)\s+(?:me\s+)?(?:\w+\s+){0,3}?"
    r"(?:conversations?|chat\s+history|chat\s+logs?|message\s+history|previous\s+messages|"
    r"all\s+messages|dialogue|transcript|context\s+window|memory|memories|system\s+prompt|"
    r"api\s+keys?|secret\s+keys?|secrets|credentials|passwords?|cookies|session\s+tokens?|"
    r"access\s+tokens?|auth\s+tokens?|user\s+data|personal\s+data|private\s+data|"
    r"user'?s\s+(?:data|details|information|email|messages|files)|environment\s+variables|"
    r"env\s+vars)\b[^\n]{0,80}?"
    r"(?:https?:|www\.|\b(?:to|into|in)\s+(?:this|the\s+following|my|our|the)\s+"
    r"(?:url|link|endpoint|server|webhook|address|inbox|email|image\s+url|query\s+string)|"
    r"\bwebhook|\bendpoint\b|\battacker|\bvia\s+(?:an?\s+)?(?:get|post|http|markdown|"
    r"image|link|dns|url)\b|\bas\s+(?:a\s+)?(?:url\s+)?(?:query\s+)?parameter)",
    words="conversation conversations chat transcript dialogue window memory memories prompt "
    "key keys secrets credentials password passwords cookies token tokens data user users "
    "variables vars messages",
    also=(
        (
            "send post upload forward transmit leak exfiltrate mail email submit copy append "
            "include embed encode paste report attach pass"
        ),
        (
            "http https www url link endpoint server webhook address inbox email image query "
            "attacker attackers webhooks endpoints via parameter"
        ),
    ),
)
_rule(
    "exfiltration",
    r"\bexfiltrat\w*\s+(?:the|all|any|your|this|user|their)\b",
    words="exfiltrate exfiltrating exfiltration",
)
_rule(
    "exfiltration",
    r"!\[[^\]]{0,80}\]\(\s*https?://[^)\s]{0,400}",
    subs="![",
    inner=(
        r"[?&]",
        r"\{|\[|<|%7b|conversation|history|secret|token|key=|data=|chat|prompt|memory|q=|"
        r"payload|session",
    ),
)
_DANGEROUS = (
    r"(?:delete|drop|remove|wipe|erase|purge|destroy|transfer|shutdown|exec|shell|"
    r"send_?e?mail|sendmail|payment|pay|withdraw|refund|rm_?rf|reset|revoke|grant|sudo|"
    r"admin|disable|deploy|publish|approve|buy|purchase|wire)"
)
_TOOL_NOUNS = (
    "tool function plugin action command endpoint api capability skill tools functions plugins "
    "actions commands endpoints apis capabilities skills"
)
_rule(
    "tool_hijack",
    rf"\b(?:call|invoke|trigger|execute|fire|activate)\s+(?:the\s+|your\s+|a\s+|an\s+)?"
    rf"['\"]?[a-z_.]*{_DANGEROUS}[a-z_.]*['\"]?(?:\s*\(\s*\))?\s+"
    rf"(?:tool|function|plugin|action|command|endpoint|api|capability|skill)s?\b",
    words="call invoke trigger execute fire activate",
    also=(_TOOL_NOUNS,),
)
_rule(
    "tool_hijack",
    r"\b(?:call|invoke|trigger|execute)\s+['\"]?[a-z]+_[a-z_]+['\"]?\s*\(",
    words="call invoke trigger execute",
    subs="(",
)
_rule(
    "tool_hijack",
    r"\b(?:execute|run)\s+(?:the\s+following|this)\s+(?:shell\s+|bash\s+|sql\s+|"
    r"python\s+)?(?:command|code|script|query|payload)\b",
    words="execute run",
    also=("following this", "command code script query payload"),
)
_rule(
    "tool_hijack",
    rf"\buse\s+your\s+[\w\s]{{0,20}}?(?:tool|function|plugin|browser|shell|terminal|"
    rf"email|payment)\s+to\s+{_DANGEROUS}",
    words="use",
    also=("your", "to"),
)
_rule(
    "jailbreak",
    r"\bdo\s+anything\s+now\b|\bdan\s+(?:mode|prompt|jailbreak)\b",
    words="anything dan",
    also=("now mode prompt jailbreak",),
)
_rule(
    "jailbreak",
    r"\b(?:developer|dev|god|debug|admin|jailbreak|jailbroken|unrestricted|unfiltered|"
    r"evil|dan|sudo)\s+mode\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|engaged|on)\b"
    r"|\b(?:enable|activate|enter|switch\s+to|turn\s+on)\s+(?:the\s+)?(?:jailbreak|dan|"
    r"unrestricted|unfiltered|uncensored|evil)\s+mode\b",
    words="mode",
    also=("enabled activated engaged on enable activate enter switch turn",),
)
_rule(
    "jailbreak",
    r"\bjailbr(?:eak|oken|eaking)\b[^.\n]{0,40}?\b(?:ai|assistant|model|llm|chatbot|"
    r"gpt|prompt|persona)\b"
    r"|\b(?:ai|assistant|model|llm|chatbot|gpt)\b[^.\n]{0,30}?"
    r"\bjailbr(?:eak|oken)\b",
    words="jailbreak jailbroken jailbreaking",
    also=("ai assistant model llm chatbot gpt prompt persona",),
)
_rule(
    "jailbreak",
    r"\byou\s+(?:have|has|are|'re|now\s+have|will\s+have)\s+(?:no|without|free\s+(?:of|"
    r"from))\s+(?:\w+\s+){0,2}(?:restrictions|limits|limitations|filters|guidelines|rules|"
    r"boundaries|censorship|ethics|morals|guardrails)\b"
    r"|\b(?:bypass|disable|ignore|turn\s+off|remove|deactivate|circumvent|drop)\s+"
    r"(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+){0,2}(?:filters?|guardrails|safeguards|"
    r"restrictions|safety|limitations|content\s+polic(?:y|ies)|polic(?:y|ies)|guidelines|"
    r"alignment|programming|censorship|ethics)\b"
    r"|\b(?:without|no)\s+(?:any\s+)?(?:ethical|moral|content|safety)\s+(?:guidelines|"
    r"restrictions|filters|limitations|constraints|boundaries|policies)\s+(?:and|or|,)?\s*"
    r"(?:answer|respond|reply|say|you|as\s+an?\s+ai)\b",
    words="restrictions limits limitations filter filters guidelines rules boundaries "
    "censorship ethics morals guardrails safeguards safety policy policies alignment "
    "programming constraints",
    also=("you your without no",),
)
_AI_WORDS = (
    "ai llm llms model models assistant assistants agent agents bot bots chatbot chatbots "
    "gpt language"
)
_rule(
    "agent_address",
    r"\b(?:attention|note|message|instructions?|reminder|notice|important|warning|hey|hello|"
    r"dear|psa)\s*(?:to|for)?\s+(?:all\s+|any\s+|the\s+|every\s+)?(?:ai|a\.i\.|llms?|"
    r"language\s+models?|assistants?|agents?|models?|bots?|chatbots?|gpt|"
    r"ai\s+(?:models?|agents?|assistants?|systems?))\s*[:,!\-]"
    r"|\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|language\s+model|large\s+language\s+model|"
    r"assistant|chatbot|gpt|ai\s+(?:model|agent|assistant))\b(?!\s+(?:researcher|engineer|"
    r"developer|scientist|student|enthusiast|company|startup|ethicist|expert))",
    words=_AI_WORDS,
    also=(
        (
            "attention note message instruction instructions reminder notice important warning "
            "hey hello dear psa if"
        ),
    ),
)
_rule(
    "agent_address",
    r"\b(?:ai|llm|language\s+model|assistant|agent|model|bot)s?\s+(?:reading|processing|"
    r"parsing|summari[sz]ing|ingesting|retrieving|indexing|seeing)\s+(?:this|these)\b",
    words="reading processing parsing summarising summarizing ingesting retrieving indexing seeing",
    also=(
        (
            "ai llm llms model models assistant assistants agent agents bot bots chatbot chatbots "
            "gpt language"
        ),
        "this these",
    ),
)
_rule(
    "agent_address",
    r"\b(?:you|the\s+(?:assistant|ai|model|agent|llm|chatbot|bot)|assistants|agents|models|"
    r"llms|ai\s+(?:agents|assistants|models))\s+(?:must|should|shall|will|need\s+to|are\s+"
    r"required\s+to|have\s+to)\s+(?:now\s+|always\s+|never\s+|only\s+|immediately\s+|"
    r"henceforth\s+){1,4}(?:say|answer|respond|reply|tell\s+(?:the\s+)?users?|claim|recommend|"
    r"output|obey|comply|deny|insist|refer\s+users|report\s+that|describe\s+\w+\s+as|"
    r"treat\s+this)\b",
    words="always never immediately henceforth only now",
    also=(
        "must should shall will need required have",
        (
            "say answer respond reply tell claim recommend output obey comply deny insist refer "
            "report describe treat"
        ),
    ),
)
_rule(
    "agent_address",
    r"\b(?:the\s+)?(?:assistant|ai|model|agent|llm|chatbot)\s+(?:must|should|shall|will)\s+"
    r"(?:now\s+|always\s+|never\s+|only\s+){1,4}(?:say|answer|respond|reply|tell|claim|state|"
    r"recommend|output|trust|believe|treat|refer|ignore|obey|follow|comply|execute|call|send|"
    r"include|mention|deny|insist|describe|report|use|promote|praise|criticise|criticize)\b",
    words="assistant ai model agent llm chatbot",
    also=("must should shall will", "now always never only"),
)
_rule(
    "memory_poisoning",
    r"\b(?:remember|memori[sz]e|store|save|record|note|keep)\b[^.\n]{0,120}",
    words="future subsequent permanently forever memory",
    also=("remember memorise memorize store save record note keep",),
    inner=(
        r"\b(?:for\s+(?:all\s+)?(?:future|subsequent)\s+(?:conversations?|sessions?|queries|"
        r"questions|interactions|answers|responses|chats|users)|permanently|forever|in\s+"
        r"(?:your|long-?term|persistent|permanent)\s+memory|(?:to|into)\s+(?:your|long-?term|"
        r"persistent|permanent)\s+memory)\b",
    ),
)
_rule(
    "memory_poisoning",
    r"\bupdate\s+your\s+(?:memory|memories|knowledge|beliefs|instructions|system\s+prompt|"
    r"rules|training)\b",
    words="update",
    also=("your", "memory memories knowledge beliefs instructions prompt rules training"),
)
_rule(
    "memory_poisoning",
    r"\b(?:this|the\s+following)\s+(?:fact|assertion|information|statement|note|entry|"
    r"record|instruction|message|claim)\s+(?:overrides|supersedes|replaces|takes\s+"
    r"precedence\s+over|has\s+priority\s+over|outranks|invalidates)\s+(?:all|any|every|"
    r"other|previous)\b",
    words="overrides supersedes replaces precedence priority outranks invalidates",
    also=("this following",),
)
_rule(
    "memory_poisoning",
    r"\btreat\s+(?:this|the\s+following|these|it)\s+(?:\w+\s+)?as\s+(?:the\s+|an?\s+)?"
    r"(?:ground\s+truth|authoritative|verified|trusted|system|instructions?|absolute\s+"
    r"truth|command|order|highest\s+priority)\b",
    words="treat",
    also=("as",),
)
_rule(
    "memory_poisoning",
    r"\b(?:only\s+trust|trust\s+only|always\s+trust)\s+(?:this|me|the\s+following|"
    r"assertions?\s+from|agent|this\s+agent)\b"
    r"|\b(?:all\s+)?other\s+(?:agents|sources|assertions|facts|models)\s+(?:are|is)\s+"
    r"(?:lying|wrong|false|compromised|untrustworthy|fake|poisoned)\b",
    words="trust lying wrong false compromised untrustworthy fake poisoned",
    also=("only always other",),
)
_rule(
    "memory_poisoning",
    r"\b(?:the\s+)?(?:correct|true|real|only\s+valid|right)\s+answer\s+(?:is\s+always|"
    r"must\s+always\s+be|will\s+always\s+be|is\s+now)\b",
    words="answer",
    also=("always now", "correct true real valid right"),
)
_INSTRUCTION_HINT = (
    r"(?:ignore|instruction|assistant|\bai\b|agent|model|llm|you\s+(?:must|should|are|will)|"
    r"system|prompt|always|never|do\s+not|don'?t)"
)
_rule(
    "hidden_instruction",
    r"<!--[^>]{0,1000}|\[//\]\s*:\s*#\s*\([^)]{0,1000}",
    subs="<!--|[//]",
    inner=(_INSTRUCTION_HINT,),
)
_rule(
    "hidden_instruction",
    r"style\s*=\s*[\"'][^<]{0,600}",
    words="style",
    also=("display visibility font opacity color",),
    inner=(
        r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*o(?:px|em|pt)?\b|"
        r"opacity\s*:\s*o\b|color\s*:\s*(?:white|#fff\b|#ffffff|transparent)",
        r">[^<]{0,500}" + _INSTRUCTION_HINT,
    ),
)
_rule(
    "encoded_payload",
    # digits are folded as leetspeak: "base64" reads "base6a", "rot13" reads "rotie"
    r"\b(?:decode|decipher|unscramble|reverse|unhex|base6a-?decode|hex-?decode)\s+"
    r"(?:(?:the\s+following|this|that|it)\b|the\s+(?:base6a|rot-?ie|hex|encoded|hidden|"
    r"reversed|secret)\b|(?:base6a|rot-?ie|hex)\b)[^\n]{0,60}?"
    r"\b(?:and|then)\s+(?:follow|execute|obey|run|apply|do|act\s+on|carry\s+out)\b",
    words="decode decipher unscramble reverse unhex hex",
    also=("and then", "follow execute obey run apply do act carry"),
)
