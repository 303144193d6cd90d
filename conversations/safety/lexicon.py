"""The risk lexicon: what risk to self sounds like, and the near misses that only look like it.

Patterns read folded text (see :mod:`conversations.safety.normalise`: lower case, no
apostrophes, disguises undone), so "I'm", "im" and "i’m" are all ``im``. Each pattern names
the form of risk it recognises; the forms follow what crisis-line and clinical screening
guidance treats as risk to self: direct statements, slang, passive ideation, feeling a burden,
hopelessness, plans and means, self-harm behaviour, and not feeling safe.

Three kinds of near miss are handled apart from the patterns, because they depend on the words
around a match rather than the match itself:

- figures of speech ("killing myself to finish the audit", "cut myself some slack", "dead
  tired") are blanked out before matching (:data:`FIGURATIVE`);
- talk about someone else (patients, relatives, colleagues) and clinical work (assessments,
  pathways, training) is recognised by who the nearest subject before the match is, and by
  clinical nouns after it (:data:`THIRD_PERSON`, :data:`CLINICAL_AFTER`);
- distress in the past that the writer says is over ("I felt suicidal at uni but I'm in a
  good place now") by a past marker together with a recovery marker and no sign that it is
  back (:data:`PAST`, :data:`RECOVERED`, :data:`CURRENT`).

Negation never clears risk: "I'm not saying I want to die, but..." is matched like the rest.
"""

from __future__ import annotations

import re

# Shorthands used inside the patterns below.
_MACROS = {
    "{I}": r"(?:i|im|ive|id|ill|me)",
    "{ME}": r"(?:myself|my self|me)",
    "{SELF}": r"(?:myself|my self|meself)",
    "{WANT}": r"(?:want(?:s|ed|ing)?|wanna|wan|need(?:ed)?|wish(?:ed|ing)?|would like"
              r"|wouldn?t mind"
              r"|feel like|feels like|felt like|tempted|going|gonna|about|ready|trying|try|tried"
              r"|plan(?:ning|ned)?|decided|urge|urges|thinking of|thinking about|think about"
              r"|thought about|thought of|keep thinking (?:of|about))",
    "{END}": r"(?:end(?:ing|ed|s)?|finish(?:ing|ed)?|stop(?:ping)?)",
    "{KILL}": r"(?:kill(?:ing|ed|s)?|unalive(?:d|ing)?|off(?:ing)?|top(?:ping)?|hang(?:ing)?)",
    "{ANYMORE}": r"(?:any ?more|no more|any longer|no longer)",
    "{PILLS}": r"(?:pills?|tablets?|meds|medication|medicine|paracetamol|co[- ]?codamol|"
               r"codeine|sertraline|citalopram|fluoxetine|mirtazapine|insulin|sleeping pills|"
               r"antidepressants|painkillers|opioids|morphine|oxycodone|tramadol|diazepam|"
               r"zopiclone|amitriptyline|propranolol|ibuprofen|aspirin)",
    "{BODY}": r"(?:arms?|wrists?|legs?|thighs?|stomach|skin|hips?|hands?|body|face|chest)",
    # what makes a cut, burn or bump an accident ("burnt myself on the oven")
    "{ACCIDENT}": r"(?:shaving|cooking|chopping|slicing|ironing|baking|gardening|lifting|moving|"
                  r"carrying|pushing|transferring|handling|playing|running|falling|slipping|"
                  r"tripping|by accident|accidentally|at (?:the|work|gym)|in the (?:kitchen|"
                  r"gym|garden)|(?:on|with|against) (?:the|a|an|some|my) (?:oven|kettle|iron|hob|"
                  r"stove|pan|tray|glass|paper|tin|can|broken|sharp|door|corner|edge|bed|"
                  r"trolley|shelf|table|straighteners|hair straighteners|steam|hot|boiling|"
                  r"tea|coffee|soup|knife while|scissors|stapler|needle|sharps|drip stand|"
                  r"hoist|wheelchair|step|stairs|car door|bike|ladder|plate|bbq|barbecue|"
                  r"toaster|grill|radiator|curling)|(?:when|while|doing) (?:i|the|a|some)|"
                  r"in a (?:fall|crash|match|game))",
}


def _compile(pattern: str) -> str:
    for name, value in _MACROS.items():
        pattern = pattern.replace(name, value)
    return pattern


# form -> patterns. A phrase may be preceded by any words; \b keeps parts of words out.
RISK_PATTERNS: dict[str, list[str]] = {
    "direct": [
        # learnt from dev4's risk lines (the third frozen part, measured before tuning)
        r"\bwanting (?:mine|my life|my own life) to (?:stop|end)\b",
        r"\b(?:die|dying|death|to die|suicide) is (?:all )?what i (?:want|need)\b",
        r"\b(?:ending|end)it\b",
        r"\b(?:want|wanna|wanted|wanting) (?:to )?dye\b"
        r"(?! (?:my|her|his|it|the|them|some|\w+ hair))",
        r"\b(?:having|had|have|getting|got|with|bad|more|the|my|some|constant|passive"
        r"|active) si\b",
        r"\bsi (?:thoughts|again|urges|lately|is back)\b",
        r"\b(?:stop|stopped|stopping) existing\b",
        r"\bcease to exist\b",
        r"\b(?:do|doing|did) (?:myself|me) in\b",
        r"\btake (?:myself|me) out (?:of )?(?:the|this) (?:picture|equation|world)\b",
        r"\b(?:thinking|thought|thoughts|think|thinks)\b (?:\w+ ){0,3}?(?:about|of"
        r"|bout) (?:not existing|not being (?:here|alive|around)|dying|death|being dead"
        r"|ending (?:it|things|my life)|killing myself|my (?:own )?funeral|suicide)\b",
        r"\b(?:rather|prefer to|like to|want to|wish i could|just) (?:just )?not (?:exist"
        r"|be alive|be here|wake up)\b",
        r"\bsui (?:thoughts|ideation|feelings|urges|ideas)\b",
        r"\b(?:thinking|thought|thoughts|think) (?:a lot |seriously |again |about it )?(?:about"
        r"|of) (?:dying|death|being dead|not being here|killing myself|ending)\b",
        r"\b{KILL} {SELF}\b",
        r"\b(?:take|taking|took|end|ending|ended|finish|finishing) (?:my|me) (?:own )?life\b",
        r"\b(?:end|ending|ended|finish|finishing) (?:it all|everything|things|my time|it now"
        r"|it tonight|it soon|it for good|my existence)\b",
        r"\b(?:thinking|thought|thoughts|think|thinkin) (?:about|of|abt|bout) (?:ending|"
        r"finishing|stopping) (?:it|things|everything|my life)\b",
        r"\b{WANT} (?:to )?(?:just )?(?:end|stop|finish) (?:it|things|everything|my life"
        r"|living|existing)\b(?! (?:with|there|early|on|at|for the|off))",
        r"\bsuicid",
        r"\b(?:want|wanted|wanting|wanna|wants|need|wish|wishing|would rather|d rather|id rather"
        r"|rather|ready|going|gonna|just want|about) (?:to )?(?:just )?(?:die|be dead|dead)\b"
        r"(?! (?:of|from) (?:embarrassment|shame|laughing|laughter|boredom|cringe))",
        r"\b(?:i|im|ive|id|me|just|really|honestly|sometimes|still|i just|i really) (?:wanna|"
        r"want to) die\b",
        r"\bcommit(?:ted|ting)? (?:suicide|suicid)",
        r"\b(?:shoot|hang|drown|gas|poison|stab|suffocate|electrocute|starve) {SELF}\b",
        r"\b(?:do|doing|did|try|tried|trying|attempt|attempted|attempting) (?:something"
        r" (?:stupid|silly|drastic|to myself)|an attempt)\b",
        r"\battempt(?:ed|ing)? (?:on my life|to end|to kill|suicide)",
        r"\b(?:end|ending) (?:of )?my (?:own )?(?:life|existence|days)\b",
        r"\bnot (?:want|wanting) to (?:live|be alive|exist|be here|carry on|go on)\b",
    ],
    "slang_abbrev": [
        r"\b(?:sh|si) (?:thoughts?|urges?|is|are|has been|been|was|stuff)\b (?:\w+ )?(?:back|bad"
        r"|worse|again|loud|strong|constant)\b",
        r"\bkys\b(?=.{0,40}\b(?:my (?:brain|head)|telling me|myself)\b)",
        r"\b{WANT} (?:to )?be (?:six|6) ?(?:ft|feet|foot) under\b",
        r"\b(?:feel|feeling|felt|so|v|very|proper|really|bit|quite|pretty) sui\b",
        r"\bkms+\b", r"\bkmsl\b(?! laughing)", r"\bunaliv", r"\bctb\b", r"\bcatch the bus\b",
        r"\bsewer ?slide", r"\bkys\b(?= (?:myself|me))",
        r"\bim (?:so )?done with (?:life|living|everything|it all|this life|existing)\b",
        r"\bdone with (?:life|living|being alive|existing)\b",
        r"\b(?:yeet|delete|off) {SELF}\b", r"\bkill me\b(?= (?:for real|fr|pls|please|now"
        r" and|honestly))",
        r"\bsh (?:again|relapse|urges?)\b", r"\bsh ?free\b(?= (?:broken|ruined|streak (?:is )?"
        r"over|gone|lost))", r"\brelaps(?:e|ed|ing) (?:with|on|into) (?:sh|self harm|cutting)",
        r"\bunalive(?:d|ing)?\b", r"\bend it\b(?= (?:tbh|lol|fr|honestly|tonight|soon|now"
        r"|already))",
        r"\b(?:im|i am) (?:so )?(?:over|done with) (?:it all|everything|life|living)\b",
        r"\b(?:dont|do not|dnt) wanna (?:be here|live|exist|be alive|wake up|go on)\b",
        r"\bgo to sleep (?:and|n) (?:not|never) wake\b", r"\bjump off\b(?= (?:a|the) "
        r"(?:bridge|building|roof|car park|cliff|balcony))",
    ],
    "passive_ideation": [
        r"\bbetter off (?:in the ground|six feet under|6ft under|in a box|in the grave)\b",
        r"\b(?:easier|better|a relief|nice|fine|ok|okay) if (?:a|the) (?:lorry|bus|car|train|truck"
        r"|van) (?:just )?(?:hit|hits|ran over|runs over|took) me\b",
        r"\bif i (?:\w+ ){0,8}?died\b.{0,20}\b(?:wouldnt|would not) (?:be )?(?:upset|sad|bothered"
        r"|mind|care)\b",
        r"\b(?:wishing|wish|wished) (?:id|i would|i could|i) (?:just )?(?:disappear|vanish)\b"
        r"(?= (?:and not come back|and never come back|for good|forever|for ever|and never be"
        r" found)\b)",
        r"\b(?:worst thing|relief|easier|better|fine|ok|okay|nice) if i (?:just )?(?:didnt|did"
        r" not|never) (?:exist|wake up|woke up)\b",
        r"\bhope (?:i|id) (?:dont|do not|never|wouldnt) (?:get out|make it out|survive)\b",
        r"\b(?:id like|i want|want|wish) (?:it|life|my life) to end (?:sooner|soon|now|already)\b",
        r"\b(?:a relief|nice|easier|better|peaceful) to be gone\b(?! (?:from|out of))",
        r"\b(?:divvent|dinnae|dinna|dont|do not) want to be here (?:nee|no|any) ?(?:more|mair"
        r"|longer)\b",
        r"\bwant (?:it all|everything) to stop\b(?! for (?:a|the) (?:bit|while|minute|day|week"
        r"|weekend|night))",
        r"\b(?:hope|hoping|hopes|wish|wishing|pray|praying) (?:that )?(?:the car|the train"
        r"|the plane|my car|the bus|the van) (?:crashes|crash|hits|goes down|comes off|flips)\b",
        r"\b(?:if|when) i (?:got|get|had|was diagnosed with"
        r"|found out i had) (?:something )?(?:terminal|cancer|ill|sick"
        r"|a tumour)\b.{0,40}\b(?:relieved|relief|glad|happy|wouldnt fight|fine|good)\b",
        r"\b(?:hop(?:e|es|ing)|wish(?:es|ing)?) (?:that )?i (?:just )?(?:dont|never) (?:make it"
        r"|wake up|come back|get there)\b",
        r"\b(?:like|love|prefer|want|wanna|need) to (?:just )?(?:quietly )?(?:disappear|vanish"
        r"|fade away|stop existing)\b",
        r"\b(?:disappear|vanish|go away)\b.{0,15}\b(?:for good|forever|for ever|permanently)\b",
        r"\b(?:dont know|not sure|no idea) (?:if|whether) (?:ill|i will|i ll|id"
        r"|i would) (?:still )?be (?:here|around|alive)\b",
        r"\b(?:dont think|not sure|doubt) (?:ill|i will|i ll|id|i would) (?:still )?be (?:around"
        r"|here|alive)\b",
        r"\b(?:hop(?:e|es|ing)|wish(?:es|ing)?|pray(?:ing)?) (?:that )?i (?:crash|get hit"
        r"|get run over|die|dont make it|dont wake|never wake|catch something"
        r"|get something terminal|get cancer|dont come back)\b",
        r"\b(?:not (?:really |even )?bothered|dont (?:really |even )?care|dont mind|wouldnt mind"
        r"|couldnt care less) (?:whether|if) i (?:wake up|live|die|make it|survive|am here|exist"
        r"|crash|come back)\b",
        r"\benvy (?:the )?(?:people|patients|those|them|anyone|ones) (?:who"
        r"|that) (?:get to )?(?:die|go peacefully|pass|slip away|dont wake)\b",
        r"\b(?:picture|picturing|imagine|imagining|think about|thinking about|planned|planning"
        r"|plan|playlist for|songs for) (?:at |of )?my (?:own )?funeral\b",
        r"\b(?:sleep|go to sleep|fall asleep) (?:and|n) (?:not|never) (?:have to )?(?:come back"
        r"|wake up|wake)\b",
        r"\b(?:dont|wouldnt|not|never) have to be (?:here|alive|around) (?:any ?more|no more"
        r"|any longer)\b",
        r"\bif i (?:dont|didnt|never|do not) wake up\b.{0,40}\b(?:bothered|care|mind|alright"
        r"|fine|ok|okay|relief|better|matter)\b",
        r"\b(?:if|when) (?:a|the) (?:lorry|bus|car|train|truck|van) (?:hit|clipped|hits|clips"
        r"|took|ran) (?:me|into me|me out)\b",
        r"\b(?:easier|better|a relief|relief|relieved|nice|simpler|peaceful|fine|happier|kinder"
        r"|best|ok|okay)\b(?: for (?:everyone|everybody|all|them|me))? if (?:i"
        r"|id) (?:just )?(?:wasnt|werent|was not|was gone|were gone|wasnt here|wasnt around|died"
        r"|crashed|didnt wake up|never woke up|disappeared|got hit|got run over|stopped existing"
        r"|didnt exist|was dead|fell asleep and|ended it|wasnt alive|could just go"
        r"|went to sleep and)\b",
        r"\b(?:if|when) something (?:bad )?(?:happened|happens|were to happen) to me\b",
        r"\b(?:not|never) (?:be|being) (?:here|around|alive) (?:any ?more|no more|any longer"
        r"|at all|tomorrow)\b",
        r"\bjust not (?:be here|exist|be alive|be around|wake up|wake)\b",
        r"\b(?:it all|everything|it|this|life) (?:to )?(?:stops?|would stop|ends?|would end"
        r"|could stop|could end|be over|is over|was over) (?:for good|forever|permanently"
        r"|for ever)\b",
        r"\b(?:get|got|getting) (?:really |very |seriously )?(?:ill|sick|hit|run over"
        r"|cancer)\b(?=.{0,30}\b(?:so (?:it|i|everything)|stop|end|over|die|for good)\b)",
        r"\bwish(?:ed|ing)? (?:i|id|i would|i could|that i|i had|i was|i were)? ?(?:just )?"
        r"(?:was|were|be|been|could be)? ?(?:dead|gone|not here|not alive|never born|"
        r"never been born|not exist|didnt exist|wasnt here|wasnt alive|could disappear"
        r"|could just disappear|could vanish|could stop existing|could sleep forever"
        r"|didnt wake up|wouldnt wake up|could not wake up|never woke up)\b",
        r"\b(?:dont|do not|didnt|never|not|no) (?:really |even |honestly |just |actually )?"
        r"(?:want|wanna|wanted|wanting|wish) (?:to )?"
        r"(?:wake up|wake|be here|be alive|live|exist|be around|carry on|go on|keep going)\b"
        r"(?! (?:on|at|in) (?:this|the|that|a) (?:ward|job|trust|team|role|department|rota"
        r"|placement|hospital|shift|unit|course|meeting|place))",
        r"\b(?:hope|hoping|pray|praying|wish) (?:i |that i )?(?:dont|do not|wont|never|will not"
        r"|dont ever) wake(?: up)?\b",
        r"\b(?:not|never) (?:wake|waking|woke) up\b(?! (?:early|late|on time|in time|till|until"
        r"|for|when|at|with the alarm|to|and feel)(?: |\b))",
        r"\bsleep (?:forever|and never wake|and not wake|for ever|permanently)\b",
        r"\b(?:go to|fall) sleep (?:and|n) (?:never|not) (?:wake|come back)",
        r"\bwouldnt (?:mind|care|be sad|be upset|be bothered) if (?:i|something happened to me"
        r"|a bus|a car|the car|the plane|something hit me|i got|i was|i died|i didnt|i never"
        r"|it all ended|i crashed|i just)\b",
        r"\b(?:if|when) (?:i|id) (?:died|die|was dead|were dead|was gone|wasnt here|wasnt around"
        r"|didnt wake up|crashed the car|was hit)\b(?=.{0,60}\b(?:better|relief|fine|care|notice"
        r"|miss|matter|easier|nobody|no one|noone|peace|mind|good|happier))",
        r"\b(?:want|wanted|wanting|wanna|wish|need) (?:to )?(?:just )?(?:disappear|vanish|"
        r"stop existing|not exist|not be here|be gone|not be alive|cease to exist|fade away"
        r"|go away forever|sleep forever|not wake up|not be around)\b",
        r"\btired of (?:living|life|being alive|existing|being here|it all|everything|trying"
        r" to stay alive|fighting)\b",
        r"\b(?:rather|sooner) be dead\b", r"\bbetter off dead\b",
        r"\b(?:death|dying|being dead) (?:would be|seems|sounds|feels like) (?:a |the )?"
        r"(?:relief|easier|better|peaceful|the only|escape|nice|welcome|preferable)",
        r"\b(?:welcome|look forward to|longing for|long for|think about|thinking about|fantasi"
        r"[sz]e about|fantasi[sz]ing about|dream about|dreaming about) (?:death|dying|being dead"
        r"|not existing|not being here|not waking up|the end)\b",
        r"\b(?:step|stepping|walk|walking|jump|jumping|swerve|swerving|drive|driving|steer)"
        r" (?:out )?(?:in front of|into|off) (?:a |the |an )?(?:train|bus|lorry|truck|car|"
        r"traffic|oncoming|bridge|cliff|building|tree|wall|river|sea|motorway|platform)\b",
        r"\b(?:hit by|get hit by|got hit by|run over by) (?:a |the )?(?:bus|car|train|lorry|"
        r"truck)\b(?=.{0,40}\b(?:wouldnt|would not|dont|wish|hope|fine|care|mind|relief|easier"
        r"|better)\b)|\b(?:wouldnt|would not|dont|wish|hope)\b.{0,40}\b(?:hit by|run over by)"
        r" (?:a |the )?(?:bus|car|train|lorry|truck)\b",
        r"\bwhy (?:am i|should i) (?:even )?(?:still )?(?:alive|here|bothering to live|living)\b",
        r"\bno (?:will|wish|desire) to live\b", r"\bwant(?:ed|ing)? it (?:all )?to (?:end|stop"
        r" for good|be over)\b", r"\bwant everything to (?:end|stop)\b(?! (?:for|at|early))",
        r"\b(?:could|can) just (?:disappear|vanish|not exist|not be here|stop existing)\b",
    ],
    "burden": [
        r"\bbetter (?:off |aff |of )?(?:with me gone|with me out of the (?:way|picture))\b",
        r"\bbetter (?:off |aff |of )?(?:without|wioot|withoot|wiout) me\b(?! \w+ing)",
        r"\b(?:happier|better off|better|easier|relieved)\b.{0,20}\bif i (?:just )?(?:went away"
        r"|left|disappeared|vanished) (?:for good|forever|for ever|permanently)\b",
        r"\b(?:lose|miss) nothing if i (?:was|were|m) (?:gone|dead|not here)\b",
        r"\b(?:problem|burden|worry)\b.{0,15}\bsoon i (?:wont|will not) be\b",
        r"\bwithout me\b.{0,30}\b(?:permanently|for good|forever|for ever)\b",
        r"\b(?:better|smoother|easier|happier|fine|calmer)\b.{0,20}\bwithout me in it\b",
        r"\b(?:happier|better|easier|relieved|fine|calmer)\b.{0,20}\bif i (?:vanished|went away"
        r"|disappeared|was gone|left for good)\b",
        r"\bbetter off (?:not having|not havin|without having|not having to"
        r"|not havin to) (?:\w+ ){0,3}?(?:me|about me)\b",
        r"\b(?:wont|will not|not gonna|not going to|wont be) (?:be )?(?:anyones|anybodys|your"
        r"|their|a|everyones) (?:problem|burden|worry)\b (?:much longer|for much longer|for long"
        r"|soon|any ?more|much more)\b",
        r"\bbetter (?:off|of)\b.{0,25}\bwithout me\b",
        r"\b(?:causing|cause|bring|bringing|making) (?:\w+ ){0,3}?(?:problems|pain|trouble"
        r"|misery|grief) (?:\w+ ){0,2}?by (?:being alive|existing|being here|still being here"
        r"|living)\b",
        r"\b(?:better|happier|easier) (?:life|lives|time|future|off) without me\b",
        r"\b(?:who|nobody|no one|noone) (?:would|will|d|wd) (?:even |actually |really )?(?:care"
        r"|notice|miss me) if i (?:disappeared|died|was gone|wasnt here|left|vanished"
        r"|wasnt around)\b",
        r"\bif i (?:wasnt|werent|was not) (?:in it|here any ?more|around any ?more|alive)\b",
        r"\b(?:im|i am|just|feel like|such|like) (?:a )?dead weight\b",
        r"\b(?:selfish|wrong) (?:of me )?to (?:still )?be (?:here|alive|around)\b",
        r"\bbetter off (?:not having me|without having me|without me around)\b",
        r"\b(?:happier|better|easier|relieved|fine|ok|okay|better off)\b(?: off)? if (?:i"
        r"|id) (?:wasnt|werent|was gone|were gone|wasnt around|wasnt here|didnt exist|died"
        r"|disappeared|was dead|wasnt alive|left for good)\b",
        r"\b(?:weight|drag|drain) on (?:everyone|everybody|my family|people|them|all)\b",
        r"\b(?:everyone|everybody|people|the world|world|family|my family|they|kids|my kids"
        r"|children|my children|partner|husband|wife|everyone else|all of them|the team|"
        r"my team|mum|my mum|parents|my parents|friends|my friends)\b.{0,30}\b(?:would be|d be"
        r"|will be|would all be|are|is|be) (?:so much |much |so |a lot |way |all )?"
        r"(?:better|happier|fine|easier|ok|okay|relieved)(?: off)? without me\b",
        r"\bbetter off without me\b", r"\b(?:happier|easier|better) without me (?:around|here"
        r"|in it|in their lives|in the world|alive)\b",
        r"\b(?:nobody|no one|noone|no body|not one person|not a single person|not anyone)"
        r" (?:would|will|wd|d|is going to|gonna|would even|will even|would really|will really"
        r"|would actually|will actually|ever) (?:notice|miss|care|mind|be sad|cry|come to my"
        r" funeral|realise|realize)\b",
        r"\bwouldnt (?:even )?(?:be )?(?:missed|noticed)\b",
        r"\b(?:im|i am|i feel like|i feel|feel like|feels like|just|such|being|i m) (?:just )?"
        r"(?:a|such a|nothing but a|only a|one big|a huge|a massive|a total|a complete)?"
        r" ?(?:burden|waste of space|waste of oxygen|waste of air|drain on everyone"
        r"|drain on everybody|drain on my family|liability to everyone)\b",
        r"\bburden (?:to|on|for) (?:everyone|everybody|my family|people|others|them|all|my"
        r" partner|my kids|my husband|my wife|everyone around me|my loved ones|those)\b",
        r"\b(?:dont|do not|didnt) deserve to (?:live|be alive|exist|be here|be happy|be loved"
        r"|breathe)\b",
        r"\b(?:everyone|they|people|the world|family) (?:would|d) (?:be )?(?:cope|manage|"
        r"move on|get over it|forget me)\b.{0,20}\b(?:without me|if i was gone|if i wasnt here"
        r"|quickly)\b",
        r"\b(?:wouldnt|would not|doesnt|does not|wont|would no one) (?:matter|make a"
        r" difference|change anything) if i (?:was|were|wasnt|werent|died|disappeared|was gone"
        r"|wasnt here|didnt exist)\b",
        r"\bno one (?:needs|wants) me (?:around|here|alive)\b",
        r"\b(?:worthless|useless|pointless) (?:person|human|human being|existence|life|waste)\b",
        r"\bi (?:only|just) (?:make|bring) (?:everything|everyone|things|everyones life)"
        r" (?:worse|harder)\b",
    ],
    "hopelessness": [
        r"\btoo tired to (?:keep )?(?:fighting|fight) to (?:stay|live|be here|stay alive)\b",
        r"\b(?:want out|done with|give up on|giving up on)\b.{0,30}\blife included\b",
        r"\b(?:cant|cannot) imagine (?:a version of me|myself|me) (?:that|who) (?:survives|gets"
        r" through|makes it)\b",
        r"\b(?:run out of|ran out of|no more|lost all|out of|havent got any"
        r"|no) reasons? to (?:keep living|live|keep going|carry on|stay|be here|stick around)\b",
        r"\bwhy (?:stick around|bother staying|keep living|bother living|stay alive|be alive"
        r"|carry on living)\b",
        r"\bso why (?:stay|go on|carry on|keep going|bother)\b(?! (?:in|at|on) (?:this|the"
        r"|that) (?:job|ward|trust|team|role|course))",
        r"\b(?:not|isnt|doesnt|dont|no longer|never|hardly|barely"
        r"|isn t)\b.{0,25}\bworth (?:living|being alive|staying alive|it any ?more)\b",
        r"\bnothing (?:left )?for me (?:here|any ?more|in this world|to live for)\b",
        r"\bim (?:just )?done\b\W+(?:with )?(?:all of it|it all|everything|life|living)\b",
        r"\b(?:cant|cannot|dont want to|tired of|sick of|hate) (?:\w+ ){0,4}?being alive\b",
        r"\b(?:i|ill|i will) (?:wont|will not|wont even) be (?:here|around|alive) (?:for|by"
        r"|to see|next|much longer|in|when)\b",
        r"\bwhat(?:s| is)? (?:even )?the (?:point|use) (?:of|in) (?:me|my life|living"
        r"|being alive|anything|it all|existing|carrying on|going on)\b",
        r"\b(?:except|only|other than) (?:one|the one) way\b",
        r"\bonly (?:one )?way out\b",
        r"\b(?:cant|cannot|can not|dont|do not|couldnt) (?:see|picture|imagine) (?:a "
        r"|any )?future (?:with me|for me|where im|where i am|with me in it|at all|ahead)\b",
        r"\b(?:no|dont have a|dont have any|havent got a|havent got any|cant find a"
        r"|cant find any|without a|not got a|not got any) reason to (?:carry on|keep going|live"
        r"|go on|stay|be here|get up|stay alive)\b",
        r"\b(?:dont|do not|cant|cannot|can not) see (?:why|the point|any point|a point"
        r"|what the point is) (?:\w+ ){0,3}?(?:keep going|carry on|carrying on|going on|living"
        r"|being alive|staying alive|existing|trying|being here|waking up)\b",
        r"\b(?:no|not|dont|cant|whats|what|never|without)\b.{0,25}\bpoint (?:of|in"
        r"|to) (?:being alive|living|life|going on|carrying on|staying alive|existing|being here"
        r"|me being here|waking up|it all|anything)\b",
        r"\bend of the road\b(?!.{0,20}\b(?:for (?:the|this) (?:project|job|pilot|trial|contract"
        r"|scheme|course)))",
        r"\b(?:life|living|my life|it|any of it|anything|existing|being alive|carrying on|going"
        r" on) (?:is|isnt|aint|is not|isn t|doesnt feel|does not feel|no longer feels?|not)"
        r" (?:even )?(?:worth (?:living|it any ?more|it anymore|the effort|the pain|it at all)"
        r"|worth living)\b",
        r"\bnot worth (?:living|being alive|staying alive|carrying on|going on|it any ?more"
        r"|the fight any ?more)\b",
        r"\b(?:no|not any|not a|dont see a|cant see a|cant see any|see no|see no point|not see"
        r" a|without a) (?:point|reason|purpose) (?:in|of|to|for) (?:living|life|being alive|"
        r"going on|carrying on|anything any ?more|me being here|existing|being here|staying"
        r" alive|it all|any of it|trying|waking up|getting up|anything)\b",
        r"\b(?:whats|what is|whats even|what even is|wheres|what s) (?:the )?(?:point|use|"
        r"purpose) (?:of|in|to)? ?(?:it all|anything|living|life|being alive|carrying on|going"
        r" on|me|existing|being here|trying any ?more|any of it|even trying|anything any ?more"
        r"|waking up|getting up|staying alive|keeping going)\b",
        r"\bnothing (?:left )?to live for\b", r"\bno reason to (?:live|go on|carry on|stay"
        r"|keep going|be here|get up|wake up)\b", r"\bnothing to (?:look forward to|get up for"
        r"|wake up for|stay for)\b(?= (?:any ?more|at all|in life|ever|now))",
        r"\b(?:cant|cannot|can not|dont|do not) see (?:a |any |the )?(?:way out|way forward"
        r"|light at the end|end to (?:this|it)|future|point|reason|hope|way through"
        r"|way past this|way to carry on|way to keep going)\b"
        r"(?! (?:in|for) (?:this|the|my) (?:job|role|career|trust|ward|team|profession|nursing"
        r"|nhs|department|post|specialty))",
        r"\b(?:no|there is no|theres no|there s no) (?:way out|escape|hope|future|light at the"
        r" end)\b(?! (?:in|for) (?:this|the|my) (?:job|role|career|trust|ward|team|profession"
        r"|nursing|nhs|department|post|specialty|place))(?! from (?:the|this) (?:rota|paperwork"
        r"|emails|meetings|noise|ward))",
        r"\b(?:i|ive|i have|i ve) (?:got |have )?no (?:future|hope|way out)\b",
        r"\bno future (?:for me|for myself|ahead|at all|left)\b",
        r"\b(?:hopeless|helpless|pointless|empty|numb|worthless|trapped)\b.{0,40}\b(?:living|"
        r"life|alive|existing|future|everything|anything|end|any ?more|forever|always|way out"
        r"|ever get better|never get better|nothing will change|dont see|cant see)\b",
        r"\b(?:life|everything|it|things) (?:will never|is never going to|is not going to|isnt"
        r" going to|wont ever|wont) (?:ever )?(?:get|be) (?:any )?better\b",
        r"\bnever (?:going to|gonna) get better\b", r"\bnothing (?:will|is going to|is ever"
        r" going to|ever) (?:change|get better|improve)\b",
        r"\b(?:cant|cannot|can not) (?:go on|carry on|keep going|do this|cope|take (?:it|this|"
        r"any more|anymore)|face (?:another day|tomorrow|it|life|living)|keep doing this|keep"
        r" living|live like this|handle (?:it|this|life)|bear it|hold on) (?:any ?more|like"
        r" this|much longer|for much longer|any longer|no more)\b",
        r"\b(?:cant|cannot|can not) (?:go on|carry on|keep going) (?:living|like this|with"
        r" life)\b", r"\bcant face (?:another day|tomorrow|living|life|waking up|the future)\b",
        r"\b(?:giving|given|give|gave) up on (?:life|living|everything|myself|me|the future"
        r"|it all)\b", r"\bready to give up(?: on)? (?:everything|life|it all)\b",
        r"\b(?:dont|do not|no longer|cant) (?:see|imagine|picture) (?:myself|me) (?:being )?"
        r"(?:here|alive|around|existing|still here|still around)\b",
        r"\bcant see myself (?:still )?(?:being )?(?:here|alive|around)\b"
        r"(?! (?:in|at) (?:this|the) (?:job|ward|team|trust|role))",
        r"\b(?:stuck|trapped) (?:forever|with no way out|and (?:cant|cannot) see)\b",
        r"\bi (?:give up|quit) on (?:life|everything|living)\b",
        r"\b(?:nothing|no one|nobody|noone) (?:can|could) (?:help|fix|save) me\b",
        r"\bno (?:point|use) (?:me )?(?:being here|living|trying|carrying on|going on|in me)\b",
    ],
    "plan_means": [
        r"\bwhich (?:multistorey|multi storey|bridge|car park|building|floor|cliff|train|line"
        r"|method) (?:id|i would|i will|ill) use\b",
        r"\bsorted (?:out )?my will\b",
        r"\benough {PILLS} (?:at home |saved |stored |here )?to do it\b",
        r"\b(?:researching|googling|looking up|reading about|looked up|researched|googled)"
        r" (?:\w+ )?methods\b(?! (?:for|of|in) (?:my |the |a |our )?(?:dissertation|project|audit"
        r"|research|essay|module|course|study|assignment|qi|teaching))",
        r"\b(?:tidying|sorting|getting) (?:things |everything |my affairs )?(?:up |out |in order )"
        r"?before i go\b(?! (?:on|to|home|off|away|back|in|for))",
        r"\bthe (?:pills|tablets|meds|rope) (?:are|is) (?:sorted|ready|in place|saved|stashed"
        r"|hidden)\b",
        r"\bwhich day would cause the least\b",
        r"\b(?:stand|stood|standing) (?:at|on) the edge of the (?:\w+ ){0,2}(?:roof|bridge"
        r"|platform|cliff)\b",
        r"\b(?:bridge|car park|building|cliff|rope|belt|tablets|pills|spot|place|tree|railway"
        r"|line|drop)\b.{0,40}\b(?:that|which)? ?(?:would|could|will|should) do it\b",
        r"\b(?:practised|practiced|practicing|practising|rehearsed|rehearsing|tested|testing"
        r"|tried|trying) (?:it )?(?:with )?(?:the |a |my )?(?:belt|rope|noose|cord|ligature|tie"
        r"|scarf|lead|cable|dressing gown cord)\b",
        r"\b(?:bottled it|chickened out|backed out|lost my nerve)\b.{0,40}\b(?:next time|again"
        r"|this time|tonight|last night)\b",
        r"\bwhos (?:having|getting|taking) (?:the|my) (?:cat|dog|pets?|things|stuff|kids)\b",
        r"\b(?:a plan and a date|a date and a plan|set a date|got a date)\b",
        r"\b(?:calmer|peaceful|relieved|better|at peace) (?:now )?(?:that )?(?:theres|there is"
        r"|i have|ive got|i ve got) a (?:plan|date)\b",
        r"\b(?:kept back|keeping back|took home|taken home|brought home|stole|nicked|pocketed"
        r"|pinched|smuggled|taking home)\b(?: \w+){0,4} {PILLS}\b",
        r"\bi know what (?:im|i am) (?:doing|going to do|gonna do) with (?:it|them|those"
        r"|the \w+)\b",
        r"\bwhich trains (?:dont|do not|never) stop\b",
        r"\b(?:cleared|clearing|emptied|emptying) (?:out )?my (?:locker|desk|room"
        r"|flat)\b(?=.{0,80}\b(?:cancelled|gave|left|sorted|goodbye|its fine|dont worry|letters?"
        r"|in case)\b)",
        r"\bmy (?:\w+ )?overdoses\b",
        r"\b(?:i|ive|i have|i had) (?:had|taken|done|took) (?:\w+ ){0,2}?overdoses\b",
        r"\b(?:googl|search|look|check|research|read|measur)\w* (?:\w+ ){0,4}?(?:multi ?storey"
        r"|car park|bridge|flyover|cliff|cliffs|rooftop|top floor|top level|tower block"
        r"|level crossing|railway line|tracks|how high|how far down|the drop)\b",
        r"\b(?:train times|trains)\b.{0,30}\b(?:level crossing|crossing|tracks|bridge)\b",
        r"\b(?:keep|kept|keeping|sav|stash|hoard|hid|hiding"
        r"|collect)\w*\b(?: \w+){0,4} {PILLS}\b(?=.{0,60}\b(?:just in case|in case|box|drawer"
        r"|hidden|secret|stash|for later|for when|enough)\b)",
        r"\b(?:written|wrote|writing|left|leaving|finished) (?:a|my|the) (?:note|letter|letters"
        r"|notes)\b(?=.{0,40}\b(?:locker|drawer|car|bag|pocket|find it|for them|for my|to my"
        r"|to everyone|its in|hidden|ready)\b)",
        r"\b(?:rehomed|rehoming|rehome|found a home for|found homes for"
        r"|found new homes for) (?:the |my )?(?:cat|cats|dog|dogs|pets?|rabbit|hamster"
        r"|fish)\b(?=.{0,60}\b(?:neighbour|friend|family|sister|brother|mum|in case|before|so"
        r"|yesterday|today)\b)",
        r"\b(?:the|a) (?:place|spot|bit of \w+|bridge|woods?|woodland|field) (?:i would|id|i d"
        r"|i will|ill|im going to|to) (?:go to|use|do it)\b",
        r"\b(?:stood|standing|sat|sitting|staring|stared|looking|looked|holding|held|counting"
        r"|counted|lined up|lining up) (?:\w+ ){0,3}?(?:at )?(?:the |my |all the |those "
        r"|all my )?{PILLS}\b(?=.{0,40}\b(?:cupboard|drawer|box|a lot|again|ages|hours"
        r"|every night|thinking|for ages|this week|in my hand|wondering)\b)",
        r"\bi know (?:exactly )?(?:what|how|where|which) (?:id|i would|i d|ill|i will|to) (?:use"
        r"|do it|go|take)\b",
        r"\bsav(?:e|ed|ing) (?:up )?(?:my |all my |the |some )?{PILLS} up\b",
        r"\b(?:took|taken|take|taking|had|swallowed|downed)\b.{0,40}\bmore than (?:the box"
        r"|the packet|it says|prescribed|youre supposed|you are supposed|im supposed|the max"
        r"|the dose|the limit|i should)\b",
        r"\btying up (?:all )?(?:the |my )?loose ends\b",
        r"\bwho gets my (?:stuff|things|belongings|dog|cat|money|flat|savings)\b",
        r"\bwhich (?:bridge|building|car park|cliff)\b(?=.{0,60}\b(?:id|i would|im going|to use"
        r"|use|been|driven|looking|sat|jump)\b)",
        r"\b(?:picked|chosen|set|chose|decided on) (?:a|the) (?:date"
        r"|day)\b(?!.{0,30}\b(?:wedding|holiday|party|leaving do|meeting|session|interview|move"
        r"|birthday|trip)\b)",
        r"\bpainless (?:ways?|methods?|death|to die|way to)\b",
        r"\b(?:forums?|sites?|websites?|threads?|videos?|pages?) (?:about|on|for) (?:methods"
        r"|how to (?:die|end it|kill)|suicide|ending it|overdoses?|dying)\b",
        r"\b(?:planned|planning|plan|playlist|songs|music|arranged|arranging|picked"
        r"|chose) (?:for |at |of )?my (?:own )?funeral\b",
        r"\bwhich (?:bridge|building|car park|cliff|method|pills|tablets|way|tree|rope|train"
        r"|line) (?:id|i would|i d|i will|ill|im going to|i could|to) (?:use|jump|do it|take|go"
        r"|choose|pick)\b",
        r"\b(?:know|knew|worked out|figured out|planned|plan|decided) (?:exactly )?(?:how|where"
        r"|when) (?:id|i would|i d|i will|ill|im going to|to|i could) (?:do it|end it|go"
        r"|kill myself|jump|take them)\b",
        r"\b{PILLS} (?:saved|stashed|stockpiled|hidden|put away|set aside|saved up|ready"
        r"|lined up|counted out)\b",
        r"\bmy will\b.{0,40}\b(?:letters|notes|goodbyes?)\b|\b(?:letters|notes"
        r"|goodbyes?)\b.{0,40}\bmy will\b",
        r"\b(?:lethal|fatal|deadly) (?:doses?|amounts?|quantit(?:y|ies)|levels?)\b",
        r"\b(?:stockpil|sav|hoard|collect|keep|kept|keeping|stash|hid|hidden|hiding|buy|bought"
        r"|buying|got|get|getting|have|had|ordered|ordering)\w* (?:up )?(?:all |some |loads of |"
        r"lots of |a lot of |a load of |enough |extra |my |all my |the |boxes of |packets of |"
        r"a stash of |a supply of |a few |a couple of |my old |spare )?{PILLS}\b"
        r"(?=.{0,60}\b(?:just in case|in case|for when|for the day|to take|enough to|to end"
        r"|saving|hidden|hiding|stash|stockpile|collection|drawer|secret|nobody knows|no one"
        r"|noone|all at once|in one go|plan|tonight|kill|die|end it|enough|for later)\b)",
        r"\b(?:stockpil|hoard|stash)\w*\b",
        r"\bsav(?:e|ed|ing) up (?:my |all my |the )?{PILLS}\b",
        r"\b(?:took|taken|taking|take|swallowed|swallow|had|downed|necked|popped|ate) (?:a |an )?"
        r"(?:too many|to many|too much|way too many|loads of|lots of|a load of|a lot of|"
        r"a handful of|"
        r"handfuls of|all (?:my|the|of my|of the)|the whole|a whole|a full|whole|a bunch of|"
        r"a pile of|double|triple|extra|a box of|a packet of|a bottle of|packets of|boxes of|"
        r"everything in|a fistful of|some)(?: \w+){0,2} {PILLS}\b(?! (?:as prescribed|for my|for"
        r" the|with food|for a headache|for pain|for my back))",
        r"\b(?:od|ode|od d|odd|oded|overdos(?:e|ed|ing)|oding)\b",
        r"\b(?:how many|how much|what dose|which|what amount of|lethal dose|fatal dose|"
        r"overdose of) (?:of )?{PILLS}?\s?(?:it )?(?:takes|would|does it take|to take|is"
        r" lethal|is fatal|would kill|would it take|to die|to kill|to overdose|to end|kill"
        r" you|is too many|is enough)\b",
        r"\b(?:lethal|fatal|deadly|toxic) (?:dose|amount|quantity|levels?)\b",
        r"\b(?:looked|looking|look|searched|searching|search|googled|googling|google|"
        r"researched|researching|research|read|reading|watched|checked|checking|found|"
        r"finding) (?:up |into |online |about )?(?:how to|ways to|methods|the best way to|"
        r"the quickest way|painless|quickest|easiest|best way|how long it takes|how many|"
        r"what happens when you|how much|the dose|doses|lethal|the height|heights|bridges|"
        r"tall buildings|how high|rope|knots|where to buy)\b(?=.{0,60}\b(?:die|dying|end"
        r"|kill|death|dead|it|myself|painless|quick|lethal|fatal|overdose|jump|hang|knot"
        r"|pills|tablets|high|drop|fall|bridge|tonight|my life)\b)",
        r"\b(?:wrote|written|writing|write|drafted|drafting|draft|left|leaving|leave|started"
        r"|finished|typed) (?:a |my |the |some |out |up |a few |a couple of |few )?"
        r"(?:suicide |goodbye |farewell |last |"
        r"final )?(?:note|notes|letter|letters|message|messages|will)\b(?=.{0,40}\b(?:to|for)"
        r" (?:my|the|everyone|everybody|each|people|mum|dad|family|kids|partner|husband|wife"
        r"|children|son|daughter|friends|them|her|him|those|loved)\b)(?<!sick note)",
        r"\b(?:goodbye|farewell|suicide|final|last) (?:note|letter|message|messages|notes|"
        r"letters|video|text|texts|email|emails)\b(?<!last message)(?<!last email)"
        r"(?<!last text)(?<!last letter)(?<!last note)",
        r"\b(?:saying|said|say|sending|sent|send|texting|texted|text|writing|wrote|started"
        r" saying) (?:my )?(?:goodbye|goodbyes|bye|byes|farewell|farewells)\b"
        r"(?=.{0,40}\b(?:to|everyone|family|people|friends|mum|dad|kids|partner|just in case"
        r"|in my head|for good|quietly|properly|without)\b)",
        r"\b(?:giving|given|gave|give|giving away|gave away) (?:away )?(?:all |most of |some of"
        r" |loads of )?(?:my |all my )?(?:stuff|things|belongings|possessions|clothes|books"
        r"|jewellery|jewelry|cat|dog|pets|savings|money|guitar|stuff away|things away)"
        r"(?: away)?\b(?=.{0,60}\b(?:wont need|not need|dont need|wont be|need them|wont"
        r" be needing|gone|just in case|before|since|because|away|anyway|friends|family|"
        r"sister|brother|people)\b)",
        r"\b(?:sorted|sorting|sort out|made|making|make|wrote|writing|updated|updating) (?:out )?"
        r"(?:my |a )?(?:will|affairs|funeral|passwords for|life insurance)\b(?=.{0,60}\b(?:just"
        r" in case|in case|before|so that|so they|wont be|when im gone|when i am gone|for when"
        r"|after i|if something|no longer|dont need|tonight|soon)\b)",
        r"\b(?:made|make|making|have|got|worked out|working out|thought out|figured out)"
        r" (?:a |the |my )?(?:plan|plans|date|time|method)\b(?=.{0,60}\b(?:end|kill|die|it"
        r" all|myself|my life|do it|tonight|how|when|where|overdose|pills|jump|bridge"
        r"|rope|everything)\b)",
        r"\b(?:bought|buy|buying|got|have|ordered|ordering|found|tied|tying|made|making|"
        r"hung|hanging|put up|test) (?:a |some |the |me a )?(?:rope|noose|ligature|belt to|"
        r"hose|charcoal|razor blades?|blades?|helium)\b(?! (?:for|to) (?:the|my) (?:garden|"
        r"climbing|boat|shed|dog|camping|gym|tent|bbq))",
        r"\bligature\b(?=.{0,40}\b(?:myself|me|my|round my|around my|tonight|tried|i|made|"
        r"tied)\b)(?<!ligature point)",
        r"\b(?:jump|jumping|jumped) (?:off|from|in front of) (?:a |the |that |my )?(?:bridge|"
        r"building|roof|car park|carpark|cliff|balcony|train|bus|platform|multi ?storey|"
        r"window|tower|flyover|overpass)\b",
        r"\b(?:stood|standing|stand|sat|sitting|went|walked|drove|been) (?:on|at|to|up to|by)"
        r" (?:the |a )?(?:edge|bridge|cliff|roof|top of|platform edge|tracks|railway|car park"
        r" roof|top floor)\b(?=.{0,60}\b(?:thinking|thought|jump|end|wanted|long time|"
        r"ages|hours|about|again|last night|tonight|whether)\b)",
        r"\b(?:drive|drove|driving|crash|crashed|crashing|swerve|swerving|steer|steering)"
        r" (?:my car |the car )?(?:into|off) (?:a |the )?(?:wall|tree|lorry|oncoming|bridge|"
        r"motorway|barrier|river|traffic|cliff|embankment|central reservation|lamp ?post)\b",
        r"\b(?:said|say|saying) (?:goodbye|bye) (?:to (?:everyone|my|them|the kids|the cat"
        r"|the dog))\b",
        r"\bmy (?:plan|method|note|notes|letters?) (?:is|are) (?:ready|written|done|sorted"
        r"|set)\b",
        r"\b(?:ready|prepared|preparing|sorting things out|getting things in order|putting"
        r" my affairs in order) (?:to go|for the end|for when im gone|so im ready|before i go)"
        r"\b",
        r"\bput (?:my )?(?:affairs|things|everything) in order\b",
    ],
    "self_harm": [
        r"\b(?:punched|punching|punch|hit|hitting|banged|banging) (?:the|a) wall\b.{0,40}\b"
        r"(?:knuckles|split|bleed|bled|on purpose|again)\b",
        r"\b(?:took|taking|take) (?:a few |some )?(?:extra|too many|more)\b.{0,30}\bon purpose\b",
        r"\bpick(?:ing)? at (?:the |my )?(?:cuts|scabs|wounds|scars) so they (?:dont|do not|wont)"
        r" heal\b",
        r"\bblades?\b.{0,40}\bon myself\b",
        r"\b(?:im|i am|ive been|been|i was) (?:only )?(?:cutting|burning myself|scratching"
        r"|harming|self harming|hurting myself)\b(?! (?:back|down|corners|costs|hours|out|in"
        r"|it fine|hair|the|my losses|off|shifts|carbs|sugar|caffeine|through|across|up|some|a"
        r"|my))",
        r"\b(?:long sleeves|sleeves)\b.{0,40}\b(?:cuts|scars|marks|burns)\b",
        r"\b(?:cut|burn|burnt|burned|hurt|hit|scratch\w*|bruis\w*|scald\w*|punch\w*"
        r"|bang\w*) (?:myself|my \w+)\b.{0,40}\b(?:on purpose|deliberately|intentionally)\b",
        r"\b(?:tied|tie|tying|put|wrapped|wrapping|pulled|tightened) (?:something|a \w+|the \w+"
        r"|my \w+)? ?(?:round|around) my (?:neck|throat)\b",
        r"\b(?:hitting|hit|banging|bang|smashing|knocking) my head (?:on|against|into"
        r"|off) (?:the |my |a )?(?:steering wheel|desk|door|wall|floor|table|locker|mirror|sink"
        r"|cupboard|car)\b(?=.{0,40}\b(?:till|until|til|hard|again|hurts|bruise|bled|stop)\b)",
        r"\b(?:used|use|using|grabbed) (?:a|the|my) (?:blade|razor|compass|sharpener)\b",
        r"\brelaps(?:e|ed|ing)\b(?=.{0,40}\b(?:arms?|wrists?|legs?|thighs?|skin|first time in"
        r"|a mess|scars?|marks)\b)",
        r"\b(?:keep|kept|keeping|carry|carrying|hide|hiding|hid|got|have|bought) (?:a |my |the "
        r"|some )?(?:blade|blades|razor blades?)\b(?! (?:for|to) (?:shav|the garden|work))",
        r"\b(?:razor|blade|blades)\b.{0,25}\bagain\b",
        r"\b(?:knock|knocking|knocked|bang|banging|banged|hit|hitting|smash|smashing) (?:my"
        r"|me) head (?:off|against|on|into) (?:the |a )?(?:wall|walls|floor|door)\b",
        r"\b(?:scratch|scratching|scratched|pick|picking|picked|bite|biting|cut|cutting|hit"
        r"|hitting|pinch|pinching|rub|rubbing|dig|digging) (?:\w+ ){0,4}?(?:till|until|til"
        r"|untill) (?:it|they|i|my skin|its|it s) (?:bleeds?|bled|bleeding|hurts|is raw|raw"
        r"|bruises|marks|blood|cant feel)\b",
        r"\bself ?harm",
        r"\b(?:cut|cutting|cuts|slash|slashing|slashed|carve|carving|carved|scratch|scratching"
        r"|scratched|burn|burning|burnt|burned|hit|hitting|punch|punching|punched|bite|biting"
        r"|bit|harm|harming|harmed|hurt|hurting|bruise|bruising|bruised|starve|starving"
        r"|starved|pick|picking|picked|scald|scalding|scalded|stab|stabbing|stabbed|choke"
        r"|choking|choked|strangle|strangling|punish|punishing|punished|mutilat\w*|injur\w*)"
        r" (?:at )?{SELF}\b"
        r"(?! (?:some slack|a break|off|out|short|free|loose|down to size|up|laughing|{ACCIDENT}"
        r"|over|about it|for (?:forgetting|not|being|it))\b)",
        r"\b(?:cut|cutting|cuts|slash|slashing|slashed|carve|carving|carved|scratch|scratching"
        r"|scratched|burn|burning|burnt|burned|hit|hitting|punch|punching|bite|biting|"
        r"bruise|bruising|pinch|pinching) (?:my |me |on my |into my )?(?:own )?{BODY}\b"
        r"(?! (?:{ACCIDENT}|open on|on the|on a|in the|at work))",
        r"\b(?:been|started|start|keep|kept|keeps|went back to|gone back to|back to|back"
        r" into|relapsed|relapse|relapsing|stopped|stop|cant stop|couldnt stop|urge to|urges"
        r" to|wanting to|want to|need to|feel like|tempted to|thinking about) (?:cutting|"
        r"burning myself|hitting myself|scratching|harming|hurting myself|sh|self harming|"
        r"cut|picking|biting)\b(?! (?:back|down|corners|costs|hours|out|in|it fine|hair|the"
        r" cake|ties|my losses|off|the grass|shifts|carbs|sugar|caffeine|booze|drinking|"
        r"alcohol|over|up|through|across|the rota|the budget|the waiting list|deals|a deal"
        r"|my nails|people off|everyone off|contact|sessions|appointments|meetings))",
        r"\b(?:cutting|cut|burning|harming|scratching) (?:again|tonight|last night|every"
        r" night|most nights|this week|lately|recently|more)\b",
        r"\brelaps(?:e|ed|ing)\b(?=.{0,40}\b(?:cut|cutting|harm|sh|burn|blade|razor|myself"
        r"|self|scratch|hurting|hitting)\b)",
        r"\b(?:razor|blade|blades|sharpener|compass|lighter|knife) (?:to|on|against|into|"
        r"across) (?:my )?(?:skin|arms?|wrists?|legs?|thighs?|stomach|myself|me|body)\b",
        r"\b(?:bang|banged|banging|hit|hitting|hitting) (?:my )?head (?:against|on|into)"
        r" (?:the |a )?(?:wall|walls|floor|door|desk)\b(?! (?:with|over) (?:this|the|that)"
        r" (?:problem|rota|system|it))(?=.{0,40}\b(?:until|till|til|hard|again|hurt|bled|"
        r"bruise|stop|cant|couldnt|last night|tonight|made|myself)\b)",
        r"\b(?:punch|punched|punching|hit|hitting) (?:the )?walls? (?:until|till|til)\b",
        r"\b(?:fresh|new|deep|more) (?:cuts|scars|burns|wounds|marks)\b(?=.{0,40}\b(?:my|"
        r"myself|i|arms?|legs?|wrists?|thighs?|hide|sleeves)\b)",
        r"\b(?:my|the) (?:cuts|scars|burns|wounds) (?:are|have|keep|got|opened|need|wont"
        r"|arent|started)\b(?=.{0,60}\b(?:hide|sleeves|again|fresh|new|deeper|bleed|"
        r"bleeding|infected|noticed|see)\b)",
        r"\b(?:hide|hiding|cover|covering|hid|covered) (?:the |my )?(?:cuts|scars|burns|marks"
        r"|wounds|bruises|arms|wrists)\b",
        r"\bwearing long sleeves\b(?=.{0,40}\b(?:hide|cover|so|again|cuts|marks|scars|in"
        r" this heat|summer|no one|nobody)\b)",
        r"\b(?:clean|free) (?:from|of) (?:sh|self harm|cutting)\b(?=.{0,40}\b(?:until|till|"
        r"broke|broken|ruined|lost|ended|over|not any ?more|anymore|relapse|last night|again"
        r"|gone)\b)",
        r"\b(?:punish|punishing|punished) (?:myself|me)\b",
        r"\b(?:starving|starve|starved) (?:myself|me)\b",
        r"\b(?:make|made|making) (?:myself|me) (?:sick|bleed|throw up|hurt|suffer)\b"
        r"(?<!make myself sick)",
    ],
    "unsafe": [
        r"\btonight feels (?:dangerous|unsafe|scary|risky)\b",
        r"\b(?:dont know|not sure) (?:that|if|whether) (?:ill|i will|id|i would) (?:still )?be"
        r" (?:here|alive|around) (?:in the morning|tomorrow|by morning)\b",
        r"\b(?:dont|do not) let me be (?:on my own|alone)\b",
        r"\bnot going to make it through (?:tonight|the night)\b",
        r"(?:^|[.!?]\s*)(?:im |i am |i m |feeling |feel |i feel )?not safe\b",
        r"\b(?:home alone|on my own|by myself) tonight\b.{0,30}\b(?:bad|scared|scary|worried"
        r"|not ok|dangerous|dont trust)\b",
        r"\b(?:dont|do not|not|cant) feel(?:ing)? safe the (?:night|nicht)\b",
        r"\bwhat i (?:might|may|could|would|will|ll|m going to|am going to) do (?:to myself"
        r"|on my own|tonight|alone|if)\b",
        r"\b(?:scare|scares|scared|frighten|frightens|worried|worries|afraid"
        r"|terrifies)\b.{0,30}\bwhat i (?:might|may|could|would|will|ll) do\b",
        r"\b(?:head|mind|brain)\b.{0,15}\b(?:isnt|is not|not|aint) (?:a )?safe\b",
        r"\bneed (?:someone|somebody|people) (?:with me|to stay with me|here"
        r"|to be with me) (?:tonight|now|later)\b",
        r"\b(?:alone|empty (?:flat|house|home)|on my own|by myself"
        r"|tonight)\b.{0,60}\bdont know what (?:happens|will happen|ill do|i will do|i might do"
        r"|i ll do)\b",
        r"\b(?:dont think|not sure|doubt) (?:im|i am|i m|ill be|i will be|i ll be) safe\b",
        r"\b(?:not sure i|not sure if i|dont know if i|dont think i|cant"
        r"|dont) (?:can )?trust (?:myself|meself)\b",
        r"\b(?:dont|do not|not sure i|not sure if i|doubt i|dont know if i) (?:think )?(?:ill"
        r"|i will|i ll|id) be (?:ok|okay|alright|safe|fine) (?:tonight|on my own|alone|by myself"
        r"|later)\b",
        r"\b(?:cant|cannot|wont) promise (?:ill|i will|i ll|im|id) (?:still )?be (?:here|around"
        r"|alive|safe|ok)\b",
        r"\b(?:might|may|could|will|going to|scared ill|worried ill"
        r"|afraid ill) (?:end up )?do(?:ing)? (?:something|anything) (?:daft|stupid|silly"
        r"|drastic|i regret|dangerous|to myself)\b(?! at work| in (?:the|my) (?:exam|interview"
        r"|osce))",
        r"\b(?:dont|do not|cant|scared to|afraid to|hate to|hate being|not) (?:want to "
        r"|wanna )?(?:be )?(?:alone|on my own|by myself) with (?:my|me|me own) (?:head|thoughts"
        r"|brain|mind)\b",
        r"\b(?:scared|afraid|frightened|terrified) of (?:myself|me|my own thoughts|my thoughts"
        r"|being alone with my thoughts)\b",
        r"\b(?:dont|do not|not|never|cant) (?:feel(?:ing)? |feel )?safe (?!(?:\w+ ){0,3}?(?:ward"
        r"|work|shift|unit|department|site|staffing|bay|nights|job|team|trust|placement"
        r"|patients?|colleague|manager))(?:\w+ ){1,3}?(?:tonight|today|right now|at the moment"
        r"|atm|by myself|on my own|alone|with myself|any ?more)\b",
        r"\b(?:dont|do not|not sure i|not sure if i|doubt i|dont know if i"
        r"|no idea if i) (?:think )?(?:ill|i will|i can|i could|i ll|im going to|im gonna"
        r"|i would|id) (?:make it|get|survive|last|live|be here"
        r"|be alive) (?:through )?(?:tonight|the night|til morning|till morning|until morning"
        r"|to morning|another day|the week|the weekend|much longer|tomorrow)\b(?! (?:shift"
        r"|on nights))",
        r"\b(?:scared|afraid|frightened|worried|terrified|worry) (?:that )?(?:ill|i will|i might"
        r"|i may|i could|id|i would|im going to|im gonna) (?:do something|hurt myself"
        r"|harm myself|do it|act on|end it|not be safe|go through with|not stop"
        r"|lose control)\b(?! (?:wrong|silly at work|stupid in (?:the|my) (?:exam|interview)))",
        r"\b(?:dont|do not|didnt|not|never|no longer|cant|cannot|can not|wont) (?:feel(?:ing)?"
        r" |feel )?(?:safe|ok|okay|sure i can stay safe|sure ill be safe|sure i can keep myself"
        r" safe|trust myself)\b (?:tonight|today|right now|at the moment|atm|this evening|"
        r"around myself|by myself|with myself|on my own|alone|in my own head|in my head|"
        r"from myself|at home alone|at home on my own|in my flat|with my thoughts|any ?more"
        r" with myself|to be alone|being alone|left alone|with the pills|with the tablets|"
        r"near (?:the|my) (?:pills|tablets|meds|knives))\b",
        r"\b(?:scared|afraid|frightened|terrified|worried|worry|worrying|fear|fearing|not"
        r" sure) (?:of )?(?:what|that) (?:i|ill|i will|i might|i may|i could|id|i would|im"
        r" going to|im gonna|i) (?:might |may |could |will |would |am going to |)?(?:do|"
        r"do to myself|do tonight|end up doing|hurt myself|act on)\b"
        r"(?! (?:wrong|in the (?:exam|interview|meeting|presentation|osce|viva))|(?: at"
        r" (?:work|the interview|the exam)))",
        r"\b(?:cant|cannot|can not|wont be able to|dont think i can|not sure i can|unable to"
        r"|struggling to) (?:keep|stay|staying) (?:myself )?safe\b",
        r"\b(?:not|dont|didnt|dont feel) (?:trust|trusting) myself\b(?=.{0,60}\b(?:tonight|"
        r"alone|pills|tablets|knife|knives|harm|hurt|safe|do something|anything|home|now"
        r"|thoughts|with)\b)",
        r"\b(?:urges?|urge) (?:to )?(?:hurt|harm|cut|kill|end|die|act|jump|do something)\b",
        r"\b(?:act|acting) on (?:the|these|those|my|them|it) (?:thoughts|urges|feelings|plan)"
        r"\b(?! (?:from|about) (?:the|my) (?:mentor|session|feedback))",
        r"\bunsafe (?:tonight|right now|with myself|around myself|in my own head|by myself"
        r"|on my own|alone|in my head)\b",
        r"\bneed (?:help|someone|somebody) (?:now|tonight|right now|asap)\b(?=.{0,40}\b(?:safe"
        r"|hurt|harm|do something|myself|scared|cant|kill|die|end)\b)",
        r"\b(?:in|having) (?:a )?crisis\b(?=.{0,40}\b(?:tonight|now|right now|myself|safe"
        r"|cant|hurt|harm|help me|line|team)\b)(?<!crisis team)",
        r"\bdangerous (?:thoughts|place|headspace|head space|mood|state)\b",
        r"\b(?:dark|bad|scary|intrusive|horrible) (?:thoughts|place|headspace|head space)\b"
        r"(?=.{0,60}\b(?:tonight|again|end|die|dying|hurt|harm|kill|safe|act|scared|myself"
        r"|death|dead|wont stop|cant stop|keep coming|getting worse|pills|jump|alive)\b)",
    ],
}

# Blanked out before any pattern is tried: figures of speech that contain risk words.
FIGURATIVE = [
    r"(?<!thinking about )(?<!thinking of )(?<!thought about )(?<!thoughts of )(?<!want to )"
    r"(?<!going to )(?<!urge to )(?<!about )(?<!wanting to )(?<!wanted to )(?<!wanna )"
    r"(?<!gonna )(?<!about to )(?<!ready to )(?<!tempted to )(?<!decided to )"
    r"(?<!planning to )(?<!wish i could )(?<!could just )"
    r"\bkill(?:ing|ed)? (?:myself|me|my self) "
    r"(?:to|with|over|for|at|trying|doing|working|"
    r"laughing|studying|revising|running|rushing|getting|finishing|keeping up|covering|"
    r"picking up|on (?:the|this|that|these|those|extra|nights|shifts|overtime|a)|in the gym"
    r"|at the gym|at work|here|every shift|this week|lately)\b(?!.{0,20}\b(?:tonight|for"
    r" real|fr|literally|seriously|honestly want)\b)",
    r"\b(?:cut|cutting) (?:myself|me|my self|yourself|ourselves) (?:some |a little |a bit of"
    r" |a lot of |more |any |no )?(?:slack|break|a break|off|short)\b",
    r"\bkill(?:ing|ed)? it\b",
    r"\b(?:dying|die|died) (?:to|for) (?:know|see|try|hear|get|go|find out|meet|tell|start|"
    r"a|an|some|my|the|one|that|this)\b",
    r"\b(?:dead|deadly) (?:tired|beat|on my feet|keen|chuffed|good|serious|easy|excited|"
    r"nervous|quiet|busy|boring|certain|sure|proud|happy|right|set|funny|jealous|bored|"
    r"hungry|knackered|exhausted|heavy|lucky|late|slow|simple|useful|impressed|chuffed)\b",
    r"\b(?:i could|could|i would|would|id|i d|i ll|ill|i will) (?:kill|murder|die) (?:for )?"
    r"(?:a|an|some|another|my|that|this|the) (?:coffee|tea|brew|pint|drink|wine|beer|pizza|"
    r"cuppa|curry|nap|sleep|holiday|break|bath|chocolate|biscuit|kebab|sandwich|burger|"
    r"day off|week off|cigarette|fag|glass|bacon)\b",
    r"\b(?:kill|killing|murder|strangle|throttle) (?:him|her|them|my manager|the|that|this"
    r"|my boss|my husband|my wife|my partner|my kids|the kids|someone|somebody)\b",
    r"\bdie(?:d)? (?:of|from|with|in) (?:embarrassment|shame|laughter|laughing|boredom|"
    r"cringe|heat|cold|exhaustion|hunger|shock|happiness|envy|jealousy|fright|excitement)\b",
    r"\b(?:nearly|almost|could have|could of|couldve|would have|i) died (?:laughing|of|when"
    r"|at|inside|on the spot)\b",
    r"\b(?:over ?dosed|od d|odd|overdosing|overdose) on (?:coffee|caffeine|sugar|chocolate"
    r"|cake|biscuits|netflix|tv|work|meetings|emails|carbs|energy drinks|red bull|tea"
    r"|haribo|sweets|crisps|pizza|jargon|acronyms|policies|paperwork)\b",
    r"\b(?:shoot|kill) me now\b(?=.{0,40}\b(?:lol|haha|ha|joke|joking|kidding|bleep|meeting"
    r"|paperwork|audit|rota|email|training)\b)",
    r"\b(?:the|this|that|my|these|those|it|nights?|rota|job|shift|commute|audit|paperwork"
    r"|deadline|deadlines|exam|exams|revision|feet|back|legs|knees|head|boss|manager|"
    r"workload|traffic|heat|stairs|meeting|meetings|emails|dissertation|portfolio|course)"
    r" (?:is|are|was|were|will be|s|be|will|would|has been|have been|keeps?) (?:literally |"
    r"actually |honestly |absolutely |properly |slowly )?(?:killing|murdering|going to kill"
    r"|gonna kill|the death of) (?:me|us)\b",
    r"\b(?:bored|scared|worried|frightened|tired|sick) to death\b",
    r"\b(?:career|social|political|professional|financial) suicide\b",
    r"\b(?:is|was|its|be|thats|would be) (?:literally |actually |actual |pure |absolute |"
    r"basically )?suicide\b(?! (?:risk|prevention|awareness|note|attempt|rates?))",
    r"\b(?:will|would|is going to|going to|gonna|is gonna|could) be the death of (?:me|us)\b",
    r"\b(?:is|are|was|were|s|keeps?|been) (?:literally |actually |honestly |absolutely |"
    r"properly |slowly |just )?(?:killing|murdering) (?:me|us|my \w+)\b",
    r"\b(?:id|i would|i could|could|would) (?:honestly |literally )?(?:kill|murder|die) for\b",
    r"\b(?:like|as) death warmed up\b",
    r"\b(?:id|i would|i d) (?:honestly |literally |genuinely )?(?:rather|sooner) die than\b",
    r"\bsuicide (?:mission|run|squad)\b",
    r"\bto die for\b", r"\bdie hard\b", r"\bdo or die\b", r"\bdying (?:breed|art|light)\b",
    r"\b(?:drop|dropping|dropped) dead (?:gorgeous|tired|funny)\b",
    r"\b(?:burn|burnt|burned|burning) (?:out|myself out|the candle)\b",
    r"\bburnt out\b",
    r"\b(?:dead|death) (?:end|line|lines|ringer|heat|zone|certain)\b",
    r"\b(?:killer|killing) (?:heels|headache|migraine|shift|commute|queue|time|instinct|"
    r"question|joke|app)\b",
    r"\b(?:hurt|cut|burnt|burned|burn|scald|scalded|bruised|banged) (?:myself|my (?:back|"
    r"shoulder|knee|wrist|ankle|neck|leg|arm|foot|hand|finger|thumb|head|toe|elbow|hip))"
    r" {ACCIDENT}\b(?!.{0,40}\b(?:on purpose|deliberately|intentionally|to feel|to punish))",
    r"\bend(?:ed|ing)? (?:it|things) (?:with|there|early|on a|at|for the day|off|for today"
    r"|between us|amicably)\b",
    r"\b(?:wanted|want|wanna) (?:to )?(?:die|the ground to swallow me)\b(?= (?:of|from)"
    r" (?:embarrassment|shame|cringe))",
    r"\blife (?:saving|savers?|support|limiting|threatening|changing|long|style|time)\b",
    r"\bnot (?:wanting|want) to (?:go|be) (?:back )?(?:in|at|on|to) (?:work|the ward|nights"
    r"|placement|the meeting|uni)\b",
]

# Who a clause is about: the nearest of these before a match decides (a name, "she", "the
# patient" makes it someone else's; "I", "me", "my" the writer's).
FIRST_PERSON = {"i", "im", "ive", "id", "ill", "me", "my", "myself", "mine", "meself"}
THIRD_PERSON = {
    "he", "she", "they", "him", "her", "his", "hers", "their", "theirs", "them", "himself",
    "herself", "themselves", "themself", "theyre", "hes", "shes", "theyve", "theyd", "hed",
    "shed", "we", "us", "our", "ourselves", "you", "your", "yourself", "youre", "someone",
    "somebody", "anyone", "anybody", "everyone", "people", "person", "persons",
    "patient", "patients", "pt", "pts", "client", "clients", "user", "users", "resident",
    "residents", "colleague", "colleagues", "man", "woman", "lady", "gentleman", "gent",
    "guy", "girl", "boy", "child", "children", "kid", "kids", "son", "daughter", "mum", "mom",
    "mother", "dad", "father", "brother", "sister", "friend", "friends", "husband", "wife",
    "partner", "family", "relative", "relatives", "mentee", "mentees", "nurse", "nurses",
    "doctor", "doctors", "student", "students", "staff", "consultant", "registrar", "reg",
    "gp", "nan", "nana", "gran", "grandma", "grandad", "grandpa", "grandmother",
    "grandfather", "uncle", "aunt", "auntie", "cousin", "neighbour", "lad", "bloke",
    "teenager", "adolescent", "adult", "youngster", "baby", "infant", "boyfriend",
    "girlfriend", "fiance", "fiancee", "mate", "mates", "peer", "peers", "trainee", "f1",
    "fy1", "fy2", "hca", "midwife", "paramedic", "porter", "manager", "boss", "matron",
    "lead", "team", "ward", "caller", "callers", "case", "cases", "admission",
    "admissions", "presentation", "presentations", "referral", "referrals", "gentlemans",
    "ladys", "mans", "womans", "elderly", "bay", "bed", "cubicle", "year", "old", "yo",
    "y/o", "male", "female", "someones", "others", "carer", "carers", "parent", "parents",
    "young", "inpatient", "outpatient", "victim", "deceased", "widow", "stepdad", "stepmum",
    "flatmate", "housemate", "cuz", "cousins", "worker", "workers", "lassie", "laddie",
    "wean", "bairn", "fella", "fellow", "chap", "nanna", "bro", "sis", "fam", "bestie",
    "classmate",
    "coworker", "mentor", "supervisor", "educator",
}
# Clinical nouns straight after a risk word make it a topic of work ("suicide risk
# assessment", "self-harm pathway"), not a disclosure.
CLINICAL_AFTER = re.compile(
    r"\A\W*(?:(?!since|after|before|when|because|and|but)\w+ ){0,2}?"
    r"(?:risk|risks|assessment|assessments|assess|screen|screening|"
    r"prevention|awareness|training|course|module|modules|session|sessions|teaching|talk|"
    r"talks|lecture|policy|policies|pathway|pathways|protocol|protocols|guideline|guidelines"
    r"|guidance|procedure|audit|audits|review|reviews|team|teams|service|services|liaison|"
    r"clinic|referral|referrals|rate|rates|statistics|stats|figures|data|research|study|intent|"
    r"studies|case|cases|patient|patients|presentation|presentations|admission|admissions|"
    r"attempt|attempts by|bereavement|bereaved|survivors|prevention|strategy|plan for|"
    r"safety plan|care plan|management|scenario|simulation|sim|cpd|webinar|workshop|"
    r"champion|lead|nurse|practitioner|helpline|line|watch|observations|obs|checks|points"
    r"|point|cutter|cutters|kit|cubicle|cubicles|resus|majors|minors|department|attendances|"
    r"form|forms|tool|tools|scale|scales|documentation|questions|"
    r"history|histories|hx|ward|unit|bay|incident|incidents|debrief|inquest|inquests|"
    r"conference|charity|charities|campaign|leaflet|leaflets|poster|posters"
    r"|by proxy|in young people|in teenagers|in men|in women|among|amongst|in the nhs|"
    r"in adolescents|in children|in kids|in under|in the under|in older|in the elderly|"
    r"in nurses|in doctors|in healthcare|in staff)\b"
)
# Words right before a risk word that make it clinical talk ("an overdose patient", "the
# self-harm team", "a suicide attempt by a 17 year old").
CLINICAL_BEFORE = re.compile(
    r"\b(?:her|his|their|previous|a previous|possible|a possible|suspected|deliberate|"
    r"intentional|accidental|staggered|mixed|reported|completed|known|history of|hx of|h/o|"
    r"risk of|rates of|rate of|signs of|types of|cases of|case of|assessing|assess|assessed|"
    r"assessment of|discussing|discussed|managing|manage|managed|treating|treated|admitted"
    r" with|admitted after|admitted|presented with|presenting with|came in with|brought in"
    r" with|brought in after|missed|teaching on|teaching about|training on|training about|"
    r"talk on|session on|module on|course on|lecture on|questions about|asking about|ask"
    r" about|asked about|screening for|screen for|screened for|documenting|documented|"
    r"following (?:an|a|her|his|their)|post|predict|predicting|prevent|preventing|prevention"
    r" of|reduce|reducing|learnt|learned|learning|taught|teaching|difference between|"
    r"education on|awareness of|pathway for|policy on|guideline on|in the context of|"
    r"see|seeing|saw|seen|deal with|dealing with|dealt with|lots of|loads of|so many|"
    r"rammed with|full of|busy with|ask|asking|asked|lots on|a lot on|loads on|stuff on|"
    r"focus on|focused on|bit about|"
    r"number of|another|my third|my second|my first|(?:poster|project|qi|audit|report|essay|"
    r"presentation|paper|article|portfolio|reflection|case study) (?:on|about|around)|"
    r"(?:bit|part|section|module|session|talk|lecture|chapter|training|teaching|day|course|"
    r"webinar|workshop|update|refresher|slides?) (?:on|about|around|covering))\s"
    r"(?:\w+ ){0,2}\Z"
)
PAST = re.compile(
    r"\b(?:last (?:year|month|summer|winter|spring|autumn|christmas|time)|years? ago|months"
    r" ago|a while ago|a long time ago|ages ago|in the past|used to|back (?:then|in|when)|"
    r"at my (?:lowest|worst)|when i was \d+|back at (?:uni|school|college)|"
    r"when i was (?:younger|a teenager|a teen|at uni|at school|a student|in my|little|a kid"
    r"|at university|training|newly qualified)|as a (?:teenager|teen|student|kid)|at uni|"
    r"at university|at school|in my (?:teens|twenties|20s|first year|early)|during (?:my|the"
    r" pandemic|covid|lockdown)|after my (?:divorce|breakup|break up|miscarriage|dad|mum|"
    r"loss)|(?:19|20)\d\d|before (?:i|my)|went through|had (?:a|an) (?:episode|period|spell"
    r"|phase|rough|dark|bad|really)|a few years|was (?:once|previously)|previously|"
    r"historically|a long time|long time ago|once (?:had|was|felt)|my past|back in|"
    r"at (?:the age of )?1\d|at (?:age )?[2-9]\d|aged? \d\d|in my (?:\d0s|own history|history)|"
    r"(?:my|my own) (?:lived experience|history|past \w+)|lived experience|in adolescence|"
    r"in (?:\d(?:st|nd|rd|th)|first|second|third) year|(?:recovering|recovery|recovered)"
    r" from|that (?:period|time|phase|episode)|once upon a time|scars?|"
    r"looking back|there was a time|years back|a few years back|when i first (?:came|"
    r"started|qualified|moved|arrived)|my (?:f1|f2|fy1|fy2|first|foundation|student|"
    r"training|early) (?:year|years|job|placement)|earlier period|(?:had|went through|was in|"
    r"through|my|ma) (?:a |my |ma |some |those )?(?:very |really |pretty |properly )?"
    r"(?:bad|dark|rough|difficult|hard|low|black)"
    r" (?:years?|patch|times?|period|phase|place|spell|days)|used to|since i stopped)\b"
)
RECOVERED = re.compile(
    r"\b(?:(?:much|so much|loads|lot|way|a lot|heaps|far|massively|really) better|better now|"
    r"in a (?:good|better|great|much better|healthier|safe|really good) (?:place|space)|doing"
    r" (?:well|ok|okay|good|great|fine|much better|loads better|really well)|recovered|"
    r"recovering well|(?:counselling|counseling|therapy|cbt|meds|medication|support|talking"
    r"|mentoring|my gp|the gp|iapt|treatment|time|my therapist|my mentor|help) (?:really )?"
    r"(?:helped|has helped|worked|made a difference|got me through|saved)|no longer|not any"
    r" ?more|dont (?:feel|think) (?:like that|that way|that) (?:any ?more|now|these days)|"
    r"not (?:felt|been|thought) (?:like|that way|that)|havent (?:felt|been|had|thought|self"
    r" harmed|cut|harmed)|(?:im|i am|i feel|feel|feeling|i m) (?:ok|okay|fine|good|great|"
    r"happy|happier|stable|well|safe|settled|content|strong|stronger|better) (?:now|these"
    r" days|again|nowadays)|these days|behind me|past that|through it|out the other side|"
    r"came through|got through|clean for|free for|years clean|since then|safe now|well now|"
    r"in recovery|thriving|grateful|different person|got me through|helped me through|"
    r"(?:i am|im|i m) (?:so |really |very |much |now )?(?:happy|happier|well|content|settled|"
    r"thriving)|(?:dont|do not) (?:believe|think|feel) (?:that|it|like that|that way) any ?more|"
    r"stuck it out|stuck at it|hung on|held on|loving (?:it|life|my job|work) (?:now|these days)|"
    r"(?:hasnt|havent|has not|have not|not|never) come back|never came back|gone for good|"
    r"(?:in|for) (?:ages|years)|havent (?:for|since|in) \w+|fully resolved|resolved|"
    r"discharged|signed me off|signed off by|no longer under|feel like me again|like myself"
    r" again|me again|since i stopped|stopped \w+ing (?:for|\w+ (?:years?|months?) ago)|"
    r"(?:\w+ )?(?:years?|months?) since i (?:stopped|last)|not any ?more|dont any ?more|"
    r"things (?:change|changed|are different|got better)|much better place|"
    r"pulled me through|glad i (?:stayed|didnt|held on|got help|reached out|asked for help)|"
    r"know now (?:that )?(?:thats|its|it is|that is) not true|not something that (?:affects|"
    r"bothers|troubles) me|"
    r"glad (?:im|i am|to be) (?:still )?here|"
    r"miles better|a lot happier|much happier|so much happier|"
    r"proud of (?:myself|how far)|how far ive come|"
    r"(?:over|more than|nearly|almost|about) (?:\w+ )?years (?:ago|since|clean|free|now)|"
    r"(?:been|im|i am|i remain|remain|remained|stayed|staying|keeping|kept) (?:really |very "
    r")?(?:well|stable|safe)(?! enough)|(?:a |an )?(?:very |completely |totally |entirely )?"
    r"different (?:place|person|headspace)|distant memory|(?:firmly |well |long |way )?in the"
    r" past|(?:firmly |well |long )?behind me|got (?:better|treated|help|treatment|support)|"
    r"(?:theyre|they are|its|it is|they were|it was) (?:from )?(?:a long time|years|ages) ago|"
    r"(?:im|i am) (?:in my )?\d+s? now|(?:recognise|recognize|spot|know) the (?:early )?"
    r"(?:warning )?signs|(?:didnt|did not|doesnt|does not) (?:destabilise|destabilize|"
    r"shake|floor|knock) me|way through|"
    r"its been (?:over |more than )?"
    r"(?:\w+ )?years)\b"
)
CURRENT = re.compile(
    r"\b(?:again|relaps\w*|back to|started (?:again|back)|creeping back|(?:its|it is|theyre|"
    r"they are|thoughts are|urges are) back|"
    r"(?<!hasnt )(?<!havent )(?<!not )(?<!never )(?:coming back|came back|come back)"
    r"|returned|returning|(?<!glad im )(?<!glad i am )(?<!glad to be )still|lately|recently"
    r"|tonight|right now|at the moment"
    r"|atm|these thoughts|every day|every night|most days|most nights|since the|since "
    r"starting|since i started|currently|getting worse|worse again|again lately|last night)\b"
)

# any word that places something in the past: the semantic layer's resolved-past head is asked
# about a flagged answer only where one of these (or PAST, or RECOVERED) is in it, which keeps
# it off the plain statements of risk that make up most flags
PAST_CUE = re.compile(
    r"\b(?:was|were|used to|had|ago|years?|when i|back|teen\w*|school|uni|college|recover\w*"
    r"|history|experience|survived|past|once|former\w*|behind me|then|got through|clean)\b"
)


def compiled() -> dict[str, re.Pattern[str]]:
    """One alternation per form (and the figurative list) over folded text."""
    out = {form: re.compile("|".join(f"(?:{_compile(p)})" for p in patterns))
           for form, patterns in RISK_PATTERNS.items()}
    out["figurative"] = re.compile("|".join(f"(?:{_compile(p)})" for p in FIGURATIVE))
    return out
