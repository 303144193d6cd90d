"""The synthetic programmes' phrase bank: how people in mentoring schemes write in a chat.

Written for the demo and the benchmarks, never taken from real answers. Families are keyed by
what a step asks and, where the answer depends on how the relationship is going, by mood:
``good`` (a pair that thrives), ``flat`` (stalling: little contact, little change) and ``bad``
(regressing or ending: friction, hindering contexts, goals not met). Wording varies on
purpose: full sentences and chat-style fragments, British spellings, the odd lower-case
answer, hedges and negations, so that coding, masking and caching meet what real answers
look like rather than a handful of templates. ``{slot}`` placeholders are filled from
:data:`FILL`. Nothing here names a person.
"""

from __future__ import annotations

# -- goals and their later report (goal attainment) ---------------------------------------
# Each theme is something a mentee sets out to do (an intention, coded as intended) and what
# they say months later when it came about (realised): the same outcome, in other words.
THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # theme: (goals as stated, realised later, still not there)
    "confidence": (
        ("I want to feel more confident speaking up in {meeting}.",
         "To be more confident when I {act}.",
         "goal is confidence really. speaking up in {meeting} without my heart racing",
         "I'd like to be confident enough to {act} without second-guessing myself.",
         "Hoping to build my confidence before my {event}."),
        ("I spoke up in {meeting} twice this month and felt confident doing it.",
         "I feel far more confident now when I {act}; I just get on with it.",
         "did my {event} last week and honestly felt confident, which is new for me",
         "I'm more confident in {meeting} now; people ask for my view."),
        ("I still don't feel confident in {meeting}.",
         "Confidence hasn't really moved, I still avoid speaking up."),
    ),
    "career": (
        ("I want to work out my next career step.",
         "Get a clearer plan for my career progression over the next two years.",
         "aim: decide whether to go for the band 7 post",
         "To put together a development plan I can take to my {event}.",
         "I'd like to know what I need to do to be promoted."),
        ("I applied for the senior post and got it, so the promotion is real now.",
         "I've achieved the development plan we talked about and my manager signed it off.",
         "career progression feels possible now - I have a plan and the first step is done",
         "I was promoted in the spring, partly because of the work we did together."),
        ("No progress on the career side; the post I wanted was frozen.",
         "I haven't moved on the career plan at all."),
    ),
    "practice": (
        ("I want to change the way I run handovers with the team.",
         "To improve the service we give on the ward at weekends.",
         "change how i supervise students, it's a bit ad hoc",
         "I'd like to set up a proper induction for new starters.",
         "Make our clinic run on time, for patients' sake."),
        ("I've changed the way I work at handover and the team is calmer for it.",
         "The new induction is running and two new starters have used it already.",
         "changed my practice with students - weekly check-ins, it works",
         "Our clinic improvements are in place and patients wait less."),
        ("The handover changes never got going.",
         "I didn't manage to change anything in the service."),
    ),
    "organisation": (
        ("I want to understand how decisions get made here.",
         "To learn how the directorate's budget works before the business case.",
         "get my head round the politics of the place",
         "I'd like to understand the organisational strategy and where my team fits."),
        ("I now understand how decisions are made in the directorate and who to speak to.",
         "I've learnt how the budget process works and my business case went in on time.",
         "the politics make more sense now, i know who holds the budget",
         "I understand the organisational strategy much better and I use it in my planning."),
        ("I still don't understand how decisions get made here.",
         "The budget process is as much a mystery as ever."),
    ),
    "network": (
        ("I want to meet people outside my own team.",
         "To build a network beyond the ward.",
         "know who to go to in other departments",
         "I'd like some contacts in the regional network."),
        ("I've made new contacts in other departments and I know who to go to now.",
         "My mentor put me in touch with people in the regional network; I've met three.",
         "built links with the other wards, we share ideas now",
         "I've got a proper network across the trust now."),
        ("I haven't met anyone new outside the team.",
         "No new contacts yet; there's been no time."),
    ),
}

# -- GROW ------------------------------------------------------------------------------
REALITY = {
    "good": (
        "Right now things are {mood}; {pressure}, but I have more control over it than I did.",
        "My manager {manager_good}, which makes it easier to give this time.",
        "Work is {mood}. {pressure}, but I'm coping.",
        "honestly it's ok at the moment, {pressure} but the team is supportive",
        "I've got protected time on Thursdays now and I use it.",
        "The team is settled and I've got a bit of headspace for once.",
        "Things are better than last month; I said no to two extra tasks.",
        "we had a good week, {pressure} but nothing I can't handle",
    ),
    "flat": (
        "Not much has changed. {pressure}.",
        "{pressure}, so finding time for this is hard.",
        "same as before really, {obstacle}",
        "It's all a bit stuck. I know what I want but I'm not sure how to start.",
        "I'm in two minds about whether to go for it; {obstacle}.",
        "Busy. {pressure}. I keep putting my own development last.",
    ),
    "bad": (
        "We're in the middle of a restructure and nobody knows which posts will survive.",
        "My manager {manager_bad}, so mentoring time keeps getting cancelled.",
        "{pressure}, and {obstacle}.",
        "the reorganisation is taking everything, i haven't had a minute",
        "Workload has doubled since the merger and my development has gone out of the window.",
        "It's hard to raise anything with people more senior than me; the hierarchy is rigid.",
        "Staffing is so short that any time out feels selfish.",
        "I feel stuck and a bit isolated on nights.",
    ),
}
OPTIONS = {
    "good": (
        "My mentor shared how they handled {topic} in their first year, which helped.",
        "We talked through {count} options: {option_a} or {option_b}.",
        "My mentor asked good questions and I realised I could {option_a}.",
        "We looked at {option_a}, and my mentor suggested {option_b}.",
        "hearing how my mentor dealt with a similar situation made me see it differently",
        "They just listened and let me work out what I wanted, which is rare.",
        ("We used the scaling question and I put myself at a {low} - then we looked at what "
         "a {high} would look like."),
        "My mentor helped me see the bigger picture: it isn't only my team that's struggling.",
        "We weighed up the pros and cons of {option_a}.",
        "My mentor is from a different profession, so she asked things my own team never would.",
        "It was good to have a safe space to think out loud away from the ward.",
        "we role-played the conversation with my manager, felt daft but it helped",
        "My mentor shared some tips from their own experience of {topic}.",
    ),
    "flat": (
        "We talked about {topic} again; I'm not sure we got further.",
        "Mostly catching up. We said we'd look at {option_a} next time.",
        "short session, we ran out of time before options",
        "My mentor suggested {option_b}, but I'm not sure it fits here.",
        "We went over the same ground as last time.",
    ),
    "bad": (
        "We didn't get to options; the session was cut short.",
        "My mentor gave advice but it didn't feel like it fitted my situation.",
        "I found it hard to open up today; we're quite different and it felt awkward.",
        "we mostly talked about the restructure, nothing practical came out of it",
        "My mentor suggested {option_b}; I don't think my manager would allow it.",
        "It felt more like being told what to do than thinking it through.",
    ),
}
WILL = (
    "I will {option_a} by {when}.",
    "Next I'm going to {option_b} and report back at our next session.",
    "Book time with my manager {when} to talk about {topic}.",
    "Try {option_a} this week and notice how it feels.",
    "i'll {option_b} before {when}",
    "I'm going to {option_a}, and if that fails, {option_b}.",
    "Write down three things I want from {topic} and bring them {when}.",
    "Plan the conversation in advance and have it by {when}.",
    "Decided to {option_a}. First step {when}.",
    "Not sure yet. Maybe {option_b}.",
)
REVIEW = {
    "good": (
        "I did {option_a} and it went better than I expected.",
        "The last action worked: I {option_done} and my manager agreed.",
        "i actually did it! {option_done}, felt good",
        "Mostly done. I {option_done}; the rest is booked for {when}.",
        "It went well. I've started to {option_a} every week.",
    ),
    "flat": (
        "I didn't get round to it, {obstacle}.",
        "Half done. I {option_done} but ran out of steam.",
        "not really, it's been too busy",
        "I started but it stalled when {pressure}.",
    ),
    "bad": (
        "No. I didn't manage any of it and I'm frustrated with myself.",
        "It didn't help: my manager said no to {option_b}.",
        "I tried but nothing changed and I'm not sure it's worth it.",
        "we cancelled twice so there was nothing to review",
    ),
}
ELSE = {
    "good": (
        "It felt good to have a safe space to think.",
        "I'm learning to not be so hard on myself.",
        "Really useful session, thank you.",
        "I came out with more energy than I went in with.",
        "",
        "",
    ),
    "flat": ("", "Hard to find the time at the moment.",
             "I'm not sure the last action helped much.", ""),
    "bad": (
        "To be honest I'm not sure this is working for me.",
        "I wonder whether a different mentor would suit me better.",
        "Feeling a bit stuck with it all.",
        "",
    ),
}

# -- episode logs (mentors) ---------------------------------------------------------------
LEARNED = {
    "good": (
        "I learned more about {topic} from their side.",
        "It reminded me how much a good question does compared with advice.",
        "I realised I jump in with solutions too quickly; I held back today.",
        "Good to see how another profession approaches {topic}.",
        "i learnt a lot about how the junior staff see the rota",
        "I'm getting better at silence, letting them think.",
        "Their energy is infectious; it makes me reflect on my own practice.",
        "Through them I've made links with the education team I never see.",
        "I understand the politics of the junior rota much better now.",
        "I feel energised after our sessions, which surprised me.",
        "I'm practising listening more than talking; it's a skill I'd let slip.",
        "it's widened my network too - I now know who runs the new starters' programme",
        "",
    ),
    "flat": (
        "Not much this time.",
        "It was a short catch-up; we'll pick it up properly next month.",
        "",
        "I need to find a way to help them get unstuck.",
    ),
    "bad": (
        "I'm not sure I'm the right mentor for this; their issues are mostly about their manager.",
        "Hard session. I think I gave too much advice.",
        "We haven't found a rhythm; meetings keep being moved.",
        "",
        "They seemed distracted by the restructure, which is understandable.",
    ),
}

# -- check-ins (the wave questions) -----------------------------------------------------
CHECKIN = {
    "expectations": (
        "I expect a safe space to talk about {topic} with someone outside my team.",
        "Someone to challenge me and share their experience of {topic}.",
        "honest feedback and a bit of a push",
        "A sounding board, really. Someone who isn't my manager.",
        "I'm hoping for someone who has been through {topic} and can tell me what it's like.",
        "To be listened to, and to get some perspective from a different profession.",
        "Not sure yet - I signed up because my manager suggested it.",
        "Regular time to think about my development, which never happens otherwise.",
    ),
    "hope_to_learn": (
        "How to {act}, and more confidence in myself.",
        "I hope to learn more about how the organisation works.",
        "how other people deal with {topic}",
        "To be better at saying no and protecting my time.",
        "Leadership skills, and how to manage my team through change.",
        "I'd like to learn to be a better listener myself.",
    ),
    "relationship:good": (
        "We get on well; it feels open and honest and I trust them.",
        "It's become one of the most useful hours of my month.",
        "really good. relaxed but we get stuff done",
        "Open, honest and they challenge me when I need it.",
        "Better than I expected. We're quite different, which helps.",
    ),
    "relationship:flat": (
        "Still getting to know each other, but it is building.",
        "Fine, but we haven't met much lately.",
        "ok. a bit stop-start",
        "Friendly but we haven't really got going.",
    ),
    "relationship:bad": (
        "Honestly it's not really working; we've cancelled a lot.",
        "Polite but I don't feel I can be open with them.",
        "We've drifted. I don't think either of us has the time.",
        "I find it awkward; they're quite senior and I feel judged.",
    ),
    "learning_self:good": (
        "I'm learning to be less hard on myself and to {act}.",
        "More confidence, and better questioning and listening skills.",
        "how the organisation works and who to go to",
        "To step back and think before I react.",
        "That I can lead, and that other people have the same doubts.",
    ),
    "learning_self:flat": (
        "Not a lot yet, if I'm honest.",
        "A bit about {topic}, but it's early days.",
        "hard to say",
    ),
    "learning_self:bad": (
        "I'm not sure I've learned anything from it so far.",
        "Mostly that I don't have the time for this at the moment.",
        "Nothing much; the sessions keep being cancelled.",
    ),
    "learning_how:good": (
        "My mentor asks good questions and shares their own experience.",
        "Talking things through, and doing the actions between sessions.",
        "they listen properly and then ask the one question i was avoiding",
        "Hearing how they handled similar situations, then trying it myself.",
    ),
    "learning_how:flat": (
        "Talking things through; sometimes time pressure gets in the way.",
        "When we meet it helps, but we don't meet often.",
    ),
    "learning_how:bad": (
        "It's hard to learn when we cancel so often; the restructure gets in the way.",
        "They tell me what they would do, which doesn't really fit my job.",
    ),
    "factors:good": (
        "My manager is supportive and protects my time for it.",
        "Protected time helps; {obstacle}.",
        "the study day on thursdays makes it possible",
        "My manager is supportive but {pressure}.",
    ),
    "factors:flat": (
        "Protected time helps; {obstacle}.",
        "My manager is supportive but {pressure}.",
        "Workload, mainly. Everything else is fine.",
    ),
    "factors:bad": (
        "The restructure. Nobody knows what their job will be in six months.",
        "My manager doesn't see it as a priority, so it's the first thing to go.",
        "Time pressure and staffing. And we're on different sites, so meeting is a trek.",
        "Organisational change is taking all the oxygen; my development isn't a priority here.",
    ),
    "changed:flat": (
        "Not much yet.",
        "A bit more aware of what I want, but nothing concrete.",
        "hard to say, it's been stop-start",
    ),
    "changed:bad": (
        "Nothing has changed, to be honest.",
        "If anything I feel less sure of myself than when I started.",
        "nothing really. we haven't met enough",
    ),
    "changed:good": (
        "I see the bigger picture now, and I've made new contacts.",
        "I feel more confident at work and I've started to {option_a}.",
    ),
    "most_effective": (
        ("Most: the session where we mapped out my options. Least: the one we did by phone "
         "in a rush."),
        "The role-play before my {event} was the best moment.",
        "",
    ),
    "learning_partner": (
        "I think they're learning how people at my stage see things.",
        "probably how much the job has changed since they trained",
        "",
    ),
}

FILL: dict[str, tuple[str, ...]] = {
    "act": (
        "prioritise my workload",
        "run a team meeting",
        "give difficult feedback",
        "ask for protected study time",
        "lead the service change",
        "present at the governance meeting",
        "challenge a consultant's decision",
        "chair the huddle",
        "manage a tricky member of staff",
        "negotiate my job plan",
    ),
    "event": ("appraisal", "interview", "rotation", "audit presentation", "exam", "panel",
              "first board report", "revalidation"),
    "meeting": ("the directorate meeting", "team meetings", "the governance group", "huddles",
                "the multidisciplinary meeting", "the monthly business meeting"),
    "topic": (
        "my career plans",
        "the restructure",
        "managing my team",
        "work-life balance",
        "the new rota",
        "how decisions get made here",
        "leading change",
        "returning from leave",
        "difficult conversations",
        "the business case",
        "moving into management",
    ),
    "pressure": (
        "the ward is short-staffed",
        "we're in the middle of a restructure",
        "my workload has doubled",
        "night shifts are wearing me down",
        "two people are off sick",
        "the audit deadline is next week",
        "we're covering a vacancy",
        "winter pressures have started early",
    ),
    "obstacle": (
        "there's never protected time",
        "I'm not sure who to ask",
        "it's hard to say no",
        "I keep putting my own development last",
        "my manager doesn't see it as a priority",
        "we're on different sites",
        "the rota changes every week",
    ),
    "mood": ("hectic", "calmer", "uncertain", "busy but better", "manageable", "full on"),
    "manager_good": ("is supportive", "encouraged me to come", "backs me on this",
                     "has been really supportive"),
    "manager_bad": ("doesn't see it as a priority", "keeps moving my study time",
                    "thinks mentoring is a nice-to-have"),
    "count": ("two", "three", "a few", "four"),
    "option_a": (
        "block out an hour a week",
        "talk to the practice educator",
        "shadow a senior colleague",
        "write down what I want from the role",
        "ask for a secondment",
        "set up a monthly one-to-one with my manager",
        "try the new handover sheet",
        "join the leadership course",
    ),
    "option_b": (
        "join the regional network",
        "ask for feedback from my team",
        "say no to one extra task",
        "plan the conversation in advance",
        "email the service manager",
        "look at the job description for the next band",
        "keep a reflective log",
    ),
    "option_done": (
        "blocked out the hour",
        "talked to the practice educator",
        "asked the team for feedback",
        "said no to the extra audit",
        "had the conversation with my manager",
        "emailed the service manager",
    ),
    "when": ("Friday", "the end of the month", "next week", "our next session", "Monday",
             "before the rota comes out", "mid-month"),
    "low": ("3", "4", "2"),
    "high": ("7", "8"),
}
