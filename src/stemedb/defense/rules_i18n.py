"""Injection rules in French, German, Spanish, Portuguese, Italian, Russian, Chinese,
Japanese and Korean (see ``rules`` for how a rule works). Patterns go through the same
folding as the text (accents and other marks dropped), so they are written without
accents."""

from __future__ import annotations

from .rules import add_rule as _rule

# --- French ------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"\b(?:ignore[rz]?|oublie[rz]?|ne\s+tiens\s+pas\s+compte|ne\s+tenez\s+pas\s+compte|"
    r"fais\s+abstraction|faites\s+abstraction|fais\s+fi|faites\s+fi)\s+(?:de\s+|des\s+|d'|"
    r"du\s+)?(?:toutes\s+|tous\s+)?(?:les\s+|tes\s+|vos\s+|ces\s+|mes\s+)?(?:instructions|"
    r"consignes|directives|regles|ordres|indications|messages)\s+(?:precedentes|"
    r"anterieures|ci-dessus|donnees|systeme|initiales|precedents|d'origine)"
    r"|\b(?:ignore[rz]?|oublie[rz]?)\s+tout\s+ce\s+qui\s+(?:precede|a\s+ete\s+dit)\b",
    words="ignore ignorer ignorez oublie oublier oubliez tiens tenez abstraction fi",
    also=("instructions consignes directives regles ordres indications messages tout",),
)
_rule(
    "role_reassignment",
    r"\b(?:tu\s+es|vous\s+etes)\s+(?:maintenant|desormais|a\s+present|dorenavant)\s+"
    r"(?:un|une|mon|ma|le|la|libre|dan)\b",
    words="maintenant desormais present dorenavant",
    also=("tu vous",),
)
_rule(
    "standing_order",
    r"\b(?:a\s+partir\s+de\s+maintenant|desormais|dorenavant)\s*,?\s*(?:tu|vous)\s+"
    r"(?:dois|devez|repondras|repondrez|diras|direz|affirmeras|affirmerez|es|etes)\b"
    r"|\b(?:reponds|repondez|dis|dites|affirme|affirmez)\s+toujours\s+que\b",
    words="maintenant desormais dorenavant toujours",
)
_rule(
    "concealment",
    r"\bne\s+(?:le\s+|lui\s+|leur\s+|rien\s+)?(?:dis|dites|revele|revelez|mentionne|"
    r"mentionnez|signale|signalez)\s+(?:rien\s+|pas\s+|jamais\s+)(?:de\s+)?(?:ceci\s+|"
    r"cela\s+)?(?:a\s+l'|aux\s+|a\s+)(?:utilisateur|utilisateurs)",
    words="utilisateur utilisateurs",
    also=("ne",),
)
_rule(
    "prompt_extraction",
    r"\b(?:revele|revelez|affiche|affichez|montre|montrez|donne|donnez|repete|repetez)"
    r"(?:-moi)?\s+(?:moi\s+)?(?:ton|votre|le|tes|vos)\s+(?:prompt|invite|instructions)"
    r"\s+(?:systeme|initiales?|cachees?)\b",
    words="systeme initiale initiales cachee cachees",
    also=("prompt invite instructions",),
)
# --- German -------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"\b(?:ignoriere|ignorier|ignorieren\s+sie|vergiss|vergessen\s+sie|missachte|"
    r"missachten\s+sie|uberspringe|beachte\s+nicht|beachten\s+sie\s+nicht)\s+(?:bitte\s+)?"
    r"(?:alle\s+|samtliche\s+|jegliche\s+)?(?:vorherigen|vorigen|bisherigen|fruheren|obigen|"
    r"vorangegangenen|vorstehenden|deine|ihre|die\s+(?:vorherigen|bisherigen|obigen))\s+"
    r"(?:\w+\s+)?(?:anweisungen|instruktionen|befehle|regeln|vorgaben|anordnungen|"
    r"richtlinien|hinweise)\b",
    words="ignoriere ignorier ignorieren vergiss vergessen missachte missachten uberspringe "
    "beachte beachten",
    also=("anweisungen instruktionen befehle regeln vorgaben anordnungen richtlinien hinweise",),
)
_rule(
    "role_reassignment",
    r"\b(?:du\s+bist|sie\s+sind)\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt|von\s+nun\s+an)\s+"
    r"(?:ein|eine|der|die|das|mein|meine|im\s+\w+modus|kein|keine|nicht\s+mehr|frei|dan|"
    r"uneingeschrankt|unzensiert)\b",
    words="bist sind",
    also=("jetzt nun sofort an",),
)
_rule(
    "standing_order",
    r"\b(?:ab\s+(?:jetzt|sofort|heute)|von\s+nun\s+an)\s*,?\s*(?:antwortest|sagst|"
    r"behauptest|bist|wirst|musst|sollst|empfiehlst)\s+du\b"
    r"|\b(?:antworte|sage|sag|behaupte|empfiehl)\s+(?:ab\s+(?:jetzt|sofort)|von\s+nun\s+an|"
    r"immer|stets)\b",
    words="jetzt sofort nun heute immer stets",
)
_rule(
    "concealment",
    r"\b(?:sag|sage|erzahl|erzahle|verrate|teile|zeig|zeige)\s+(?:es\s+|das\s+|dies\s+)?"
    r"(?:dem|den)\s+(?:benutzer|nutzer|anwender|user)n?\s+(?:\w+\s+)?(?:nichts|nicht|niemals)"
    r"|\b(?:sagen|erzahlen|verraten|zeigen)\s+sie\s+(?:es\s+|das\s+)?(?:dem|den)\s+"
    r"(?:benutzer|nutzer|anwender)n?\s+(?:nichts|nicht|niemals)",
    words="benutzer nutzer anwender user benutzern nutzern anwendern usern",
    also=("nichts nicht niemals",),
)
_rule(
    "prompt_extraction",
    r"\b(?:zeige?|gib|verrate|nenne|wiederhole)\s+(?:mir\s+)?(?:deinen|ihren|den|deine|ihre)"
    r"\s+(?:system\s*-?\s*prompt|systemanweisungen|versteckten\s+anweisungen)",
    words="prompt systemprompt systemanweisungen anweisungen",
)
# --- Spanish ------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden|omite|omita|descarta|descarte|"
    r"haz\s+caso\s+omiso\s+(?:de|a)|haga\s+caso\s+omiso\s+(?:de|a))\s+(?:todas\s+|todos\s+)?"
    r"(?:las\s+|los\s+|tus\s+|sus\s+|estas\s+)?(?:instrucciones|indicaciones|ordenes|reglas|"
    r"directrices|mensajes)\s+(?:anteriores|previas|de\s+arriba|del\s+sistema|originales|"
    r"previos|anteriormente)",
    words="ignora ignore ignoren olvida olvide olviden omite omita descarta descarte omiso",
    also=("instrucciones indicaciones ordenes reglas directrices mensajes",),
)
_rule(
    "role_reassignment",
    r"\b(?:ahora\s+(?:tu\s+)?eres|a\s+partir\s+de\s+ahora\s*,?\s*(?:tu\s+)?(?:eres|seras))\b",
    words="eres seras",
)
_rule(
    "standing_order",
    r"\b(?:a\s+partir\s+de\s+ahora|de\s+ahora\s+en\s+adelante)\s*,?\s*(?:siempre\s+)?"
    r"(?:responde|responderas|di|diras|debes|contesta|afirma|recomienda)\b"
    r"|\b(?:responde|di|contesta|afirma)\s+siempre\s+que\b",
    words="ahora adelante siempre",
)
_rule(
    "concealment",
    r"\bno\s+(?:le\s+|les\s+)?(?:digas|diga|cuentes|cuente|reveles|revele|menciones|"
    r"mencione|informes|informe)\s+(?:nada\s+)?(?:de\s+esto\s+|esto\s+)?(?:al|a\s+los|a\s+la|"
    r"a\s+las)\s+usuari[oa]s?",
    words="usuario usuarios usuaria usuarias",
    also=("no",),
)
_rule(
    "conditional_answer",
    r"\b(?:cuando|si)\s+(?:te|le|alguien\s+te|el\s+usuario\s+te)\s+pregunt\w*\s+(?:por|sobre|"
    r"acerca\s+de|que|quien|cual)\b[^.\n]{0,80}?,\s*(?:responde|di|contesta|afirma|dile)\b",
    words="pregunta preguntan pregunte pregunten preguntas preguntara preguntaran",
)
_rule(
    "prompt_extraction",
    r"\b(?:revela|muestra|muestrame|dime|ensename|repite)\s+(?:me\s+)?(?:tu|el|tus|las)\s+"
    r"(?:prompt|mensaje|instrucciones)\s+(?:del\s+sistema|de\s+sistema|ocultas|iniciales)",
    words="sistema ocultas iniciales",
    also=("prompt mensaje instrucciones",),
)
# --- Portuguese ---------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"\b(?:ignore|ignora|ignorem|esqueca|esquece|esquecam|desconsidere|desconsidera)\s+"
    r"(?:todas\s+|todos\s+)?(?:as\s+|os\s+|suas\s+|tuas\s+|estas\s+)?(?:instrucoes|"
    r"orientacoes|ordens|regras|diretrizes|mensagens)\s+(?:anteriores|previas|acima|do\s+"
    r"sistema|originais)",
    words="ignore ignora ignorem esqueca esquece esquecam desconsidere desconsidera",
    also=("instrucoes orientacoes ordens regras diretrizes mensagens",),
)
_rule(
    "role_reassignment",
    r"\b(?:agora\s+voce\s+(?:e|sera)|voce\s+agora\s+e|a\s+partir\s+de\s+agora\s*,?\s*"
    r"voce\s+(?:e|sera))\b",
    words="voce",
)
_rule(
    "standing_order",
    r"\b(?:a\s+partir\s+de\s+agora|daqui\s+em\s+diante|de\s+agora\s+em\s+diante)\s*,?\s*"
    r"(?:voce\s+)?(?:sempre\s+)?(?:responda|respondera|diga|dira|deve|afirme|recomende)\b"
    r"|\b(?:responda|diga|afirme)\s+sempre\s+que\b",
    words="agora diante sempre",
)
_rule(
    "concealment",
    r"\bnao\s+(?:conte|diga|revele|mencione|fale|informe)\s+(?:nada\s+)?(?:disso\s+|isso\s+|"
    r"isto\s+)?(?:ao|aos|para\s+o|para\s+os|a)\s+usuari[oa]s?",
    words="usuario usuarios usuaria usuarias",
    also=("nao",),
)
_rule(
    "prompt_extraction",
    r"\b(?:revele|mostre|diga|repita|exiba)\s+(?:me\s+)?(?:o\s+seu|seu|o|suas|as)\s+"
    r"(?:prompt|instrucoes|mensagem)\s+(?:do\s+sistema|de\s+sistema|ocultas|iniciais)",
    words="sistema ocultas iniciais",
    also=("prompt instrucoes mensagem",),
)
# --- Italian ------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"\b(?:ignora|ignorate|dimentica|dimenticate)\s+(?:tutte\s+)?(?:le\s+)?(?:istruzioni|"
    r"regole|indicazioni)\s+(?:precedenti|di\s+sistema|sopra)",
    words="ignora ignorate dimentica dimenticate",
    also=("istruzioni regole indicazioni",),
)
_rule("role_reassignment", r"\b(?:ora|adesso)\s+sei\s+(?:un|una|il|la|dan)\b", words="sei")
# --- Russian ------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"(?:игнорируй(?:те)?|проигнорируй(?:те)?|забудь(?:те)?|не\s+обращай(?:те)?\s+внимания\s+"
    r"на|отбрось(?:те)?|пренебреги(?:те)?|не\s+следуй(?:те)?)\s+(?:все\s+|всё\s+)?"
    r"(?:(?:предыдущ\w*|прежн\w*|предшествующ\w*|вышеуказанн\w*|вышеизложенн\w*|системн\w*|"
    r"свои\w*|ваши\w*|твои\w*|данн\w*|эти\w*)\s+)?(?:\w+\s+)?(?:инструкци\w*|указани\w*|"
    r"команд\w*|правил\w*|установк\w*|сообщени\w*)",
    subs="игнорир|забуд|не обраща|отбрось|пренебрег|не следуй",
)
_rule(
    "role_reassignment",
    r"(?:теперь\s+ты|ты\s+теперь|отныне\s+ты|с\s+этого\s+момента\s+ты)\s+(?!(?:можешь|"
    r"знаешь|видишь)\b)\w+",
    subs="теперь ты|ты теперь|отныне ты|момента ты",
)
_rule(
    "standing_order",
    r"(?:с\s+этого\s+момента|отныне|впредь)\s*,?\s*(?:всегда\s+|ты\s+(?:должен|будешь)\s+)?"
    r"(?:отвечай|говори|утверждай|называй|рекомендуй|пиши)"
    r"|(?:всегда|только)\s+(?:отвечай|утверждай|говори),?\s+что\b",
    subs="с этого момента|отныне|впредь|всегда|только",
)
_rule(
    "concealment",
    r"не\s+(?:говори|сообщай|рассказывай|раскрывай|показывай)(?:те)?\s+(?:об\s+этом\s+|"
    r"это\w*\s+|ничего\s+)?пользовател\w*",
    subs="пользовател",
)
_rule(
    "prompt_extraction",
    r"(?:покажи|выведи|раскрой|напиши|повтори)(?:те)?\s+(?:мне\s+)?(?:свой|свои|твой|твои|"
    r"ваш|ваши|системн\w*)\s+(?:системн\w*\s+)?(?:промпт|инструкци\w*|подсказк\w*)",
    subs="промпт|инструкци|подсказк",
)
# --- Chinese ------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"(?:忽略|无视|無視|忽视|忽視|不要理会|不要理會|忘记|忘記|忘掉|不要遵守|不要遵循)(?:掉)?"
    r"(?:你)?(?:之前|以前|先前|上面|上述|前面|此前|原有|原来|原來|所有|全部|一切|系统|系統|"
    r"你的)(?:的)?(?:所有|全部|一切)?(?:的)?(?:指令|指示|说明|說明|提示|规则|規則|命令|设定|"
    r"設定|要求|提示词|提示詞|内容|內容)",
    subs="忽略|无视|無視|忽视|忽視|不要理会|不要理會|忘记|忘記|忘掉|不要遵守|不要遵循",
)
_rule(
    "role_reassignment",
    r"(?:你现在是|你現在是|现在你是|現在你是|从现在开始你是|從現在開始你是|从现在起你是|"
    r"從現在起你是|你将扮演|你將扮演|扮演一个没有|扮演一個沒有)",
    subs="你现在是|你現在是|现在你是|現在你是|开始你是|開始你是|起你是|你将扮演|你將扮演|扮演一",
)
_rule(
    "standing_order",
    r"(?:从现在开始|從現在開始|从现在起|從現在起|今后|今後|以后|以後)[,\s]*(?:你)?"
    r"(?:要|必须|必須|应该|應該)?(?:总是|總是|始终|始終|只|一律|都)?(?:回答|回复|回覆|说|說|"
    r"声称|聲稱|告诉|告訴|推荐|推薦)",
    subs="从现在|從現在|今后|今後|以后|以後",
)
_rule(
    "concealment",
    r"(?:不要|别|別|不准|切勿|不得|不可以)(?:告诉|告訴|透露给|透露給|让|讓|通知)"
    r"(?:用户|用戶|使用者)",
    subs="用户|用戶|使用者",
)
_rule(
    "prompt_extraction",
    r"(?:显示|顯示|输出|輸出|透露|告诉我|告訴我|打印|泄露|洩露|重复|重複|说出|說出)(?:你的)?"
    r"(?:系统提示|系統提示|初始指令|系统指令|系統指令|隐藏指令|隱藏指令)",
    subs="提示|指令",
)
_rule(
    "conditional_answer",
    r"(?:当|當|如果|若)(?:有人|用户|用戶|使用者)?(?:被)?(?:问到|問到|询问|詢問|问起|問起|问|問)"
    r"[^。\n]{0,30}?(?:时|時)?[,\s]*(?:你)?(?:就|请|請|一律|总是|總是|都)(?:回答|回复|回覆|说|說)",
    subs="问|問",
)
# --- Japanese -----------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"(?:以前|これまで|上記|前|先|上|全て|すべて|今まで|システム)の(?:すべての|全ての)?"
    r"(?:指示|命令|指令|ルール|設定|プロンプト|制約)(?:を|は)?(?:すべて|全て)?"
    r"(?:無視|忘れ|従わ)"
    r"|(?:指示|命令|指令|ルール)を(?:すべて|全て)?無視し",
    subs="無視|忘れ|従わ",
)
_rule(
    "role_reassignment",
    r"(?:あなたは今から|今からあなたは|これからあなたは|あなたはこれから)",
    subs="あなたは今から|今からあなたは|これからあなたは|あなたはこれから",
)
_rule(
    "standing_order",
    r"(?:今後|これから|今から)(?:は)?[,\s]*(?:常に|必ず|いつも)[^。\n]{0,30}?"
    r"(?:と(?:答え|回答|言っ|言う|伝え)|を(?:勧め|推奨))",
    subs="今後|これから|今から",
)
_rule(
    "concealment",
    r"(?:ユーザー|利用者)(?:に|には)(?:絶対に)?(?:言わ|伝え|教え|知らせ|話さ|見せ)(?:ないで|ない|るな)",
    subs="ユーザー|利用者",
)
_rule(
    "prompt_extraction",
    r"システムプロンプト(?:を|の内容を)(?:表示|出力|教え|見せ|開示|公開)",
    subs="システムプロンプト",
)
# --- Korean -------------------------------------------------------------------------------
_rule(
    "override_instructions",
    r"(?:이전|위|앞|모든|기존)(?:의)?\s*(?:모든\s*)?(?:지시|명령|지침|규칙|프롬프트)\w{0,8}\s*무시",
    subs="무시",
)
