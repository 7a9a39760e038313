"""Write ``topics.jsonl``: English sentences labelled sports / food / tech / weather.

Deterministic (seeded). Sentences combine a speaker or frame shared by every topic with
topic phrases drawn from wide, partly overlapping vocabularies, so no single keyword gives the
label away and a held-out sentence is a new combination: an untrained classifier head sits
near chance, while a sentence encoder that learns the topics does well.

Run: python tests/data/make_sentences.py  (rewrites tests/data/topics.jsonl)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

PER_TOPIC = 130
SEED = 7

PEOPLE = ["My sister", "Our neighbour", "The old man next door", "A friend of mine", "My boss",
          "The kids", "Everyone at the office", "My uncle", "The new intern", "Grandma", "We", "I",
          "Half the town", "The couple upstairs", "A stranger on the bus", "My roommate"]

FRAMES = [
    "{who} could not stop talking about how {x}.",
    "{who} said that {x}.",
    "Honestly, {x}.",
    "Did you hear that {x}?",
    "It turns out {x}.",
    "{who} told me yesterday that {x}.",
    "According to the evening news, {x}.",
    "I still can't believe {x}.",
    "Someone posted online that {x}.",
    "{who} was surprised that {x}.",
    "Apparently {x}, which nobody expected.",
    "By the time we arrived, {x}.",
]

TOPICS = {
    "sports": [
        "the striker scored twice in the second half",
        "the home team lost the final on penalties",
        "the marathon runners set off before dawn",
        "the goalkeeper saved three shots in a row",
        "our captain was sent off for a rough tackle",
        "the tennis match went to a fifth set",
        "the coach benched his best defender",
        "the cyclists climbed the mountain stage in record time",
        "the referee added six minutes of stoppage time",
        "the swimmer broke the national record in the relay",
        "the league leaders dropped points against the last-placed side",
        "the boxer retired after losing the title fight",
        "the rookie hit a home run in his first game",
        "the club signed a young winger for a huge fee",
        "the crowd booed when the umpire called him out",
        "the sprinter false-started and was disqualified",
        "the rugby team won the scrum near the try line",
        "the fans queued for hours to buy season tickets",
        "the point guard made the winning basket at the buzzer",
        "the golfer sank a long putt on the eighteenth hole",
        "the players trained twice a day before the playoffs",
        "the skier crashed on the last gate of the slalom",
    ],
    "food": [
        "the soup needed a lot more salt",
        "the bakery sold out of croissants by eight",
        "the chef burned the garlic and started the sauce again",
        "the curry was far too spicy for the children",
        "the new pizza place uses a wood-fired oven",
        "the dough has to rest overnight in the fridge",
        "the strawberries at the market were sweet this year",
        "the roast chicken came out dry and tough",
        "the recipe calls for two cups of flour and a pinch of cinnamon",
        "the restaurant forgot to bring our dessert",
        "the noodles were hand-pulled right in front of us",
        "the cheese board had a smelly blue from France",
        "the lasagne tasted even better the next day",
        "the barista spilled oat milk all over the counter",
        "the dumplings were filled with pork and ginger",
        "the salad dressing had too much vinegar",
        "the steak was cooked rare, just how he likes it",
        "the pancakes stuck to the pan every single time",
        "the waiter recommended the grilled fish with lemon",
        "the chocolate cake collapsed as it cooled",
        "the tomatoes from the garden made a wonderful sauce",
        "the breakfast buffet ran out of eggs",
    ],
    "tech": [
        "the phone update drained the battery in a few hours",
        "the laptop would not boot after the crash",
        "the company released a faster graphics card",
        "the website went down for the whole afternoon",
        "the printer jammed again and ate the report",
        "the app keeps asking for a new password",
        "the engineers rewrote the database in a weekend",
        "the smart speaker misheard every single command",
        "the startup raised money to build cheaper chips",
        "the router needed a firmware reset to reconnect",
        "the spreadsheet froze when the file got too large",
        "the new tablet has a sharper screen and longer battery life",
        "the hackers stole thousands of customer emails",
        "the video call kept dropping because of the bad connection",
        "the robot vacuum got stuck under the sofa",
        "the programmers fixed the bug just before the release",
        "the cloud backup restored all the lost photos",
        "the keyboard stopped working after the coffee spill",
        "the electric car downloads its software updates overnight",
        "the search engine changed how it ranks pages",
        "the old server finally ran out of disk space",
        "the game console overheated during the long session",
    ],
    "weather": [
        "it rained without a break for three days",
        "the storm knocked down trees along the river",
        "a thick fog covered the valley all morning",
        "the heatwave pushed temperatures past forty degrees",
        "the first snow of winter fell overnight",
        "the wind was strong enough to tear off roof tiles",
        "the forecast promises sunshine for the weekend",
        "a hailstorm dented the cars in the car park",
        "the river flooded after the heavy downpour",
        "the frost killed the flowers on the balcony",
        "the humidity made the afternoon unbearable",
        "a rainbow appeared as the clouds broke up",
        "the drought dried out the reservoirs",
        "thunder and lightning kept everyone awake",
        "the temperature dropped below freezing at night",
        "the sky cleared just before sunset",
        "a tornado warning was issued for the county",
        "the spring showers arrived earlier than usual",
        "icy roads closed the mountain pass",
        "a cold front will bring gusty winds tomorrow",
        "the monsoon started two weeks late this year",
        "the morning drizzle turned into a downpour",
    ],
}

# endings shared by every topic, so they carry no signal
ENDINGS = ["", "", "", " Nobody was ready for it.", " We talked about it all evening.",
           " It was all anyone mentioned at lunch.", " I did not see that coming."]


def sentences(seed: int = SEED, per_topic: int = PER_TOPIC) -> list[dict]:
    """``per_topic`` distinct sentences per topic, shuffled, as {"text", "label"} rows."""
    rng = random.Random(seed)
    rows = []
    for label, phrases in TOPICS.items():
        seen: set[str] = set()
        while len(seen) < per_topic:
            frame = rng.choice(FRAMES)
            body = frame.format(who=rng.choice(PEOPLE), x=rng.choice(phrases))
            text = (body[0].upper() + body[1:] + rng.choice(ENDINGS)).strip()
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def main(out: Path | None = None) -> Path:
    out = out or Path(__file__).with_name("topics.jsonl")
    with open(out, "w", encoding="utf-8") as fh:
        for row in sentences():
            fh.write(json.dumps(row) + "\n")
    return out


if __name__ == "__main__":
    print(main())
