"""Other wordings of ``gen_tasks.TASKS``: the same ask said with other words, by someone else.

The frames and surface edits of ``gen_pairs.py`` keep a task's own words, so its paraphrases
overlap heavily; people asking the same thing use other words, another register (terse keyword
queries, chatty questions that add context, a description instead of the term), and so do the
hard negatives a cache meets (a flipped or swapped prompt need not reuse the stored one's words).
Each entry gives a task (by domain and its text in ``TASKS``) more wordings, as ``(kind, text)``
with the same markup and the same slots: the same poles in the same order, the same numbers in
the same order and the same named things. A paraphrase pair then often takes two different
wordings; a hard negative sometimes does, with its one change.

Only training domains are reworded here (``gen_pairs.DEV_DOMAINS`` keep their own words, so the
generated dev split still measures what it did).
"""

# ruff: noqa: E501  (one wording a line reads better than wrapped markup)

from __future__ import annotations

# fmt: off
REWORDINGS: dict[tuple[str, str], list[tuple[str, str]]] = {
    # --- programming -------------------------------------------------------------------------
    ("programming", "(remove/delete) duplicates from a list in [plang]"): [
        ("q", "[plang]: my list has repeated values, how do I keep just one of each?"),
        ("q", "dedupe a [plang] list"),
    ],
    ("programming", "read a CSV file {with|without} a header row in [plang]"): [
        ("q", "In [plang], how do I load a spreadsheet export {whose first line holds the column names|that has no column names on the first line}?"),
        ("q", "[plang] csv parsing, file {has|has no} header line"),
    ],
    ("programming", "sort a list of numbers in {ascending|descending} order in [plang]"): [
        ("q", "[plang]: put an array of ints in order, {smallest|largest} first"),
        ("q", "I have a bunch of numbers in a [plang] list and want them ordered {low to high|high to low}. What's the call?"),
    ],
    ("programming", "convert a string to {uppercase|lowercase} in [plang]"): [
        ("q", "[plang] make text all {caps|small letters}"),
        ("q", "What function turns every letter of a [plang] string into {capitals|lower case}?"),
    ],
    ("programming", "make an HTTP request {with|without} a timeout in [plang]"): [
        ("q", "[plang]: calling a REST API, how do I {give up if the server takes too long|let the call wait forever instead of giving up}?"),
    ],
    ("programming", "convert a [plang#1] script to [plang#2]"): [
        ("q", "I have some [plang#1] code and need the same thing in [plang#2], how should I port it?"),
        ("q", "rewrite [plang#1] code as [plang#2]"),
    ],
    ("programming", "round a number to <n:2-4> decimal places in [plang]"): [
        ("q", "[plang] format a float so it shows only <n:2-4> digits after the point"),
        ("q", "How do I cut a decimal down to <n:2-4> places in [plang]?"),
    ],
    ("programming", "the difference between a list and a tuple in [plang]"): [
        ("q", "[plang] tuple vs list, when do I use which?"),
        ("q", "Why does [plang] have both lists and tuples, and how are they different?"),
    ],
    ("programming", "write a [plang] function that checks whether a number is {prime|not prime}"): [
        ("q", "need a [plang] helper that returns true when an integer {is a prime|has a divisor other than 1 and itself}"),
    ],
    ("programming", "write a [plang] function that returns the first <n:5-20> Fibonacci numbers"): [
        ("q", "[plang] code to print the Fibonacci sequence up to its <n:5-20>th term"),
        ("q", "Can you give me a [plang] snippet that generates <n:5-20> numbers of the fibonacci series?"),
    ],
    ("programming", "explain what a closure is in [plang]"): [
        ("q", "[plang] closures, what are they and why would I use one?"),
        ("q", "Can someone walk me through how an inner [plang] function remembers variables from the function around it?"),
    ],
    ("programming", "split a string by commas in [plang]"): [
        ("q", "[plang]: turn 'a,b,c' into a list of parts"),
        ("q", "How do I break a comma separated line into separate values in [plang]?"),
    ],
    ("programming", "{encrypt|decrypt} a file with a password in [plang]"): [
        ("q", "[plang]: {lock a file so only someone with a passphrase can read it|open a file I locked with a passphrase}"),
    ],
    ("programming", "my unit tests {pass|fail} only on the CI server"): [
        ("q", "Tests are {green|red} in the pipeline but behave differently on my laptop. What could cause that?"),
    ],
    # --- devops ------------------------------------------------------------------------------
    ("devops", "{start|stop} a container in [tool]"): [
        ("q", "[tool]: which command {brings a container up|shuts a running container down}?"),
    ],
    ("devops", "move files from [os#1] to [os#2]"): [
        ("q", "What's the easiest way to get my documents off a [os#1] machine and onto a [os#2] one?"),
        ("q", "transfer data [os#1] -> [os#2]"),
    ],
    ("devops", "(set up/configure) [tool] on [os]"): [
        ("q", "First time using [tool]. How do I get it installed and running on my [os] box?"),
        ("q", "[tool] install guide for [os]"),
    ],
    ("devops", "{increase|decrease,reduce} the memory limit of a container to <n:2-16> GB"): [
        ("q", "my container needs {more|less} RAM, how do I cap it at <n:2-16> GB instead?"),
    ],
    ("devops", "run a cron job every <n:2-30> minutes"): [
        ("q", "crontab line to fire a script every <n:2-30> min"),
        ("q", "How do I schedule a task on a Linux server so it repeats every <n:2-30> minutes?"),
    ],
    ("devops", "{enable|disable} automatic updates on [os]"): [
        ("q", "I want [os] to {install patches on its own|stop installing patches by itself}. Where is that setting?"),
    ],
    ("devops", "my [tool] deployment {succeeds|fails} on the second try"): [
        ("q", "Why would a [tool] rollout {go through|break} only when I run it a second time?"),
    ],
    ("devops", "check which process is using port <n:1000-9999> on [os]"): [
        ("q", "Something is already listening on <n:1000-9999> on my [os] machine. How do I find out what it is?"),
        ("q", "[os] find program holding port <n:1000-9999>"),
    ],
    ("devops", "roll back a deployment in [tool] to version <n:2-9>"): [
        ("q", "The last release broke prod. How do I go back to release <n:2-9> with [tool]?"),
    ],
    # --- data --------------------------------------------------------------------------------
    ("data", "write a SQL query that returns the top <n:3-20> products by revenue"): [
        ("q", "SQL: which <n:3-20> items made the most money? need the query"),
        ("q", "Query to rank products by sales and keep only the best <n:3-20>"),
    ],
    ("data", "back up a [db] database"): [
        ("q", "How do I make a copy of all my [db] data so I can restore it if something goes wrong?"),
        ("q", "[db] dump and restore"),
    ],
    ("data", "migrate data from [db#1] to [db#2]"): [
        ("q", "We're leaving [db#1] for [db#2]. How do we move all the tables over?"),
    ],
    ("data", "find rows where the email is {null|not null} in [db]"): [
        ("q", "[db]: select the records {that have no email address|that have an email address filled in}"),
    ],
    ("data", "(count/get the number of) rows in a pandas dataframe"): [
        ("q", "how big is my df, i.e. how many records does it have?"),
        ("q", "pandas df length"),
    ],
    ("data", "select the last <n:5-50> rows of a pandas dataframe"): [
        ("q", "pandas: show only the final <n:5-50> records of a df"),
        ("q", "What's the df equivalent of tail for the bottom <n:5-50> entries?"),
    ],
    ("data", "sort a pandas dataframe by date in {ascending|descending} order"): [
        ("q", "pandas: order my df so the {oldest|newest} dates come first"),
    ],
    ("data", "fill missing values {with|without} the mean in pandas"): [
        ("q", "my df has NaNs, how do I replace them {by the column average|by something other than the column average}?"),
    ],
    ("data", "the difference between an inner join and a left join"): [
        ("q", "inner vs left join?"),
        ("q", "When I join two tables, why do some rows vanish with one kind of join and come back as nulls with the other?"),
    ],
    ("data", "explain how an index speeds up queries in [db]"): [
        ("q", "Why do my [db] lookups get so much faster after I add an index?"),
    ],
    # --- cooking -----------------------------------------------------------------------------
    ("cooking", "make [dish] {with|without} eggs"): [
        ("q", "[dish] recipe {that uses eggs|for someone who can't have eggs}?"),
        ("q", "I want to bake [dish] {and I have eggs|but I'm out of eggs}. What do I do?"),
    ],
    ("cooking", "cook [food] in the oven"): [
        ("q", "oven temp and time for [food]?"),
        ("q", "I've only got an oven tonight. What's the right way to do [food] in it?"),
    ],
    ("cooking", "roast a <n:3-8> pound chicken"): [
        ("q", "how long does a <n:3-8> lb bird need in the oven"),
        ("q", "Cooking time and temperature for a whole <n:3-8>-pound chicken?"),
    ],
    ("cooking", "bake [dish] for <n:4-12> people"): [
        ("q", "I'm feeding <n:4-12> guests, how big a batch of [dish] should I make?"),
    ],
    ("cooking", "keep [dish] fresh for <n:2-5> days"): [
        ("q", "best way to store leftover [dish] so it lasts <n:2-5> days"),
        ("q", "Will [dish] still taste good after <n:2-5> days, and how should I keep it?"),
    ],
    ("cooking", "a good (substitute/replacement) for [food] in [dish]"): [
        ("q", "out of [food] and halfway through making [dish], what can I use instead?"),
        ("q", "[food] swap for [dish]?"),
    ],
    ("cooking", "the best way to store fresh [fruit]"): [
        ("q", "my [fruit] keeps going bad in a couple of days, how should I keep it?"),
        ("q", "fridge or counter for [fruit]?"),
    ],
    ("cooking", "Is it {safe|unsafe,dangerous} to eat raw [food]?"): [
        ("q", "can you eat [food] uncooked {without getting sick|or will it make you sick}?"),
    ],
    ("cooking", "give me a [dish] recipe {with|without} dairy"): [
        ("q", "[dish] {with milk and butter|for someone who can't have milk or cheese}, recipe please"),
    ],
    ("cooking", "my [dish] {rises|doesn't rise} in the oven"): [
        ("q", "Why does my [dish] {puff up|stay flat} while baking?"),
    ],
    ("cooking", "make my coffee {stronger|weaker}"): [
        ("q", "my morning brew tastes too {weak|strong}, how do I fix it?"),
    ],
    # --- travel ------------------------------------------------------------------------------
    ("travel", "the best time to visit [country]"): [
        ("q", "When should I plan a trip to [country] for good weather and fewer crowds?"),
        ("q", "[country] which month to go"),
    ],
    ("travel", "get from the airport to the centre of [city]"): [
        ("q", "just landed in [city], what's the easiest way downtown?"),
        ("q", "[city] airport to city center transport options"),
    ],
    ("travel", "travel from [city#1] to [city#2] by train"): [
        ("q", "rail connection [city#1] to [city#2]?"),
        ("q", "I'd rather not fly. Can I take the train from [city#1] to [city#2], and how?"),
    ],
    ("travel", "plan a <n:2-10>-day trip to [city]"): [
        ("q", "I have <n:2-10> days in [city], what should my itinerary look like?"),
        ("q", "[city] itinerary for <n:2-10> days"),
    ],
    ("travel", "the visa requirements for [country]"): [
        ("q", "What paperwork do I need before I can enter [country]?"),
        ("q", "[country] entry rules, do I need a visa"),
    ],
    ("travel", "the cheapest way to fly from [city#1] to [city#2]"): [
        ("q", "low cost flights [city#1] to [city#2]?"),
        ("q", "On a tight budget, how do I get a plane ticket from [city#1] to [city#2] for as little as possible?"),
    ],
    ("travel", "things to do in [city] {with|without} kids"): [
        ("q", "{family friendly|adults only} activities in [city]?"),
    ],
    ("travel", "the best neighbourhoods to stay in [city] on a budget"): [
        ("q", "Where should I book a cheap but decent hotel in [city]?"),
        ("q", "affordable areas to stay in [city]"),
    ],
    ("travel", "{cancel|book} a flight with [airline]"): [
        ("q", "How do I {call off my reservation|get a seat reserved} on [airline]?"),
    ],
    # --- health ------------------------------------------------------------------------------
    ("health", "the (symptoms/signs) of [disease]"): [
        ("q", "How would I know if I have [disease]?"),
        ("q", "[disease] warning signs?"),
    ],
    ("health", "the side effects of [drug]"): [
        ("q", "I just started [drug]. What reactions should I watch out for?"),
        ("q", "[drug] adverse effects"),
    ],
    ("health", "Can I take [drug] {with|without} food?"): [
        ("q", "Should [drug] be taken {with a meal|on an empty stomach}?"),
    ],
    ("health", "foods to {eat|avoid} when you have [disease]"): [
        ("q", "What should someone with [disease] {put on their plate|keep off their plate}?"),
    ],
    ("health", "{lower,reduce|raise,increase} my blood pressure naturally"): [
        ("q", "My BP runs {too high and I want it down|too low and I want it up}. What lifestyle changes help without pills?"),
    ],
    ("health", "{gain|lose} weight healthily"): [
        ("q", "safe way to {put on|drop} a few kilos?"),
    ],
    ("health", "fall asleep faster {with|without} melatonin"): [
        ("q", "I lie awake for ages every night. How do I drop off quicker {using melatonin|without taking melatonin}?"),
    ],
    ("health", "Is [disease] contagious?"): [
        ("q", "can you catch [disease] from someone else?"),
        ("q", "Does [disease] spread from person to person?"),
    ],
    # --- finance -----------------------------------------------------------------------------
    ("finance", "the difference between a Roth IRA and a traditional IRA"): [
        ("q", "roth vs traditional ira?"),
        ("q", "Which retirement account gets taxed now and which one later, Roth or traditional?"),
    ],
    ("finance", "open a savings account with [bank]"): [
        ("q", "I'd like to start putting money aside at [bank]. What do I need to open an account there?"),
    ],
    ("finance", "pay off $<n:2-50>,000 of credit card debt"): [
        ("q", "I owe <n:2-50>k on my cards. What's a realistic plan to clear it?"),
    ],
    ("finance", "the {advantages,pros,benefits|disadvantages,cons,downsides} of index funds"): [
        ("q", "What {makes index investing attractive|could go wrong with index investing}?"),
    ],
    ("finance", "transfer money from [bank#1] to [bank#2]"): [
        ("q", "How do I send funds out of my [bank#1] account into my [bank#2] one?"),
    ],
    ("finance", "{increase|lower} my credit score quickly"): [
        ("q", "fastest way to {boost|tank} my FICO"),
    ],
    ("finance", "the tax brackets for <year:2019-2025>"): [
        ("q", "income tax rates by bracket, <year:2019-2025>?"),
        ("q", "How much federal tax do I pay at each income level in <year:2019-2025>?"),
    ],
    ("finance", "convert <n:50-900> euros to dollars"): [
        ("q", "<n:50-900> EUR in USD?"),
        ("q", "how many US dollars would I get for <n:50-900> euro"),
    ],
    # --- math --------------------------------------------------------------------------------
    ("math", "calculate the area of a {circle|square}"): [
        ("q", "formula for how much space is inside a {round shape|shape with four equal sides}?"),
    ],
    ("math", "convert <n:2-100> miles to kilometers"): [
        ("q", "<n:2-100> mi in km"),
        ("q", "If something is <n:2-100> miles away, how far is that in kilometres?"),
    ],
    ("math", "Is <n:50-999> a prime number?"): [
        ("q", "can <n:50-999> be divided evenly by anything except 1 and itself?"),
    ],
    ("math", "the derivative of x to the power of <n:2-9>"): [
        ("q", "d/dx of x^<n:2-9>"),
        ("q", "How do I differentiate x raised to <n:2-9>?"),
    ],
    ("math", "find the {maximum|minimum} of a function"): [
        ("q", "How do I locate the {highest|lowest} point of a curve using calculus?"),
    ],
    ("math", "explain [subject] to a high school student"): [
        ("q", "Can you teach me [subject] as if I were 16?"),
        ("q", "[subject] for teenagers, simple explanation"),
    ],
    # --- science -----------------------------------------------------------------------------
    ("science", "the atomic number of [element]"): [
        ("q", "how many protons does [element] have?"),
        ("q", "[element]'s place in the periodic table, by number?"),
    ],
    ("science", "How many moons does [planet] have?"): [
        ("q", "number of natural satellites orbiting [planet]?"),
    ],
    ("science", "Why do objects {float|sink} in water?"): [
        ("q", "What makes some things {stay on top of|go to the bottom of} a pool?"),
    ],
    ("science", "the boiling point of water at <n:1000-5000> meters"): [
        ("q", "At <n:1000-5000> m altitude, what temperature does water boil at?"),
    ],
    ("science", "How long does light take to travel from the Sun to [planet]?"): [
        ("q", "How many minutes until sunlight reaches [planet]?"),
    ],
    ("science", "Do [animal] see in color?"): [
        ("q", "are [animal] colour blind?"),
        ("q", "What colours can [animal] actually perceive?"),
    ],
    # --- history -----------------------------------------------------------------------------
    ("history", "the causes of [event]"): [
        ("q", "Why did [event] happen in the first place?"),
        ("q", "what led to [event]"),
    ],
    ("history", "Who won [event]?"): [
        ("q", "which side came out on top in [event]?"),
    ],
    ("history", "summarize the life of [person]"): [
        ("q", "short biography of [person]"),
        ("q", "Who was [person] and what did they do with their life?"),
    ],
    ("history", "When was [person] born?"): [
        ("q", "[person] birth date?"),
        ("q", "In what year did [person] come into the world?"),
    ],
    ("history", "the consequences of [event]"): [
        ("q", "How did [event] change things afterwards?"),
        ("q", "long term impact of [event]"),
    ],
    ("history", "Who was the first president of [country]?"): [
        ("q", "who led [country] as its very first head of state?"),
    ],
    # --- geography ---------------------------------------------------------------------------
    ("geography", "the capital of [country]"): [
        ("q", "which city is the seat of government in [country]?"),
        ("q", "[country] capital city?"),
    ],
    ("geography", "the population of [city]"): [
        ("q", "how many people live in [city]?"),
        ("q", "[city] number of inhabitants"),
    ],
    ("geography", "the currency of [country]"): [
        ("q", "what money do they use in [country]?"),
        ("q", "Which cash should I bring to [country]?"),
    ],
    ("geography", "Which language do they speak in [country]?"): [
        ("q", "official language of [country]?"),
    ],
    ("geography", "What time zone is [city] in?"): [
        ("q", "what's the UTC offset for [city]"),
        ("q", "If it's noon in London, what time is it in [city]?"),
    ],
    ("geography", "the tallest mountain in [country]"): [
        ("q", "highest peak in [country]?"),
    ],
    ("geography", "the {largest,biggest|smallest} city in [country]"): [
        ("q", "which [country] city has the {most|fewest} people?"),
    ],
    # --- sports ------------------------------------------------------------------------------
    ("sports", "How many players are on a [sport] team?"): [
        ("q", "[sport] squad size on the field?"),
        ("q", "how many people does one side field in a game of [sport]"),
    ],
    ("sports", "the rules of [sport]"): [
        ("q", "Never watched [sport] before. How does a game actually work?"),
        ("q", "[sport] basics for beginners"),
    ],
    ("sports", "give me a <n:10-60> minute [sport] training plan"): [
        ("q", "I have <n:10-60> minutes to practise [sport], what drills should I do?"),
    ],
    ("sports", "train for a <n:5-42> km run in <n:4-16> weeks"): [
        ("q", "I signed up for a <n:5-42>k race that's <n:4-16> weeks away. How should I prepare?"),
    ],
    # --- writing -----------------------------------------------------------------------------
    ("writing", "write a poem about [animal] in <n:4-20> lines"): [
        ("q", "a <n:4-20>-line verse about [animal], please"),
        ("q", "compose some poetry on [animal], <n:4-20> lines long"),
    ],
    ("writing", "write a {formal|informal,casual} email to my (boss/manager) asking for a day off"): [
        ("q", "need a {professional|relaxed, friendly} note to my supervisor requesting leave tomorrow"),
    ],
    ("writing", "write a message {accepting|declining,turning down} the invitation to the party"): [
        ("q", "help me reply to a party invite {saying yes|saying I can't make it}"),
    ],
    ("writing", "summarize the plot of [book]"): [
        ("q", "what happens in [book]? short version"),
        ("q", "Give me the storyline of [book] in a few sentences."),
    ],
    ("writing", "translate this paragraph from [language#1] to [language#2]"): [
        ("q", "Can you put this [language#1] text into [language#2] for me?"),
    ],
    ("writing", "write a cover letter for a [job] job"): [
        ("q", "I'm applying to be a [job]. Help me draft the letter that goes with my CV."),
        ("q", "[job] application letter"),
    ],
    ("writing", "make this text {longer|shorter}"): [
        ("q", "Can you {expand|condense} this paragraph?"),
    ],
    # --- support -----------------------------------------------------------------------------
    ("support", "{cancel|renew} my [app] subscription"): [
        ("q", "I want to {stop paying for|keep paying for} [app], where do I do that?"),
    ],
    ("support", "reset my [app] password"): [
        ("q", "forgot my [app] login, how do I get back in?"),
        ("q", "I'm locked out of [app] because I can't remember my password. What now?"),
    ],
    ("support", "{turn on,enable|turn off,disable} notifications in [app]"): [
        ("q", "I {want|don't want} [app] to ping me with alerts. How do I change that?"),
    ],
    ("support", "{block|unblock} a contact in [app]"): [
        ("q", "[app]: how do I {stop someone from messaging me|let someone I shut out message me again}?"),
    ],
    ("support", "update my [device] to iOS <c:iosver>"): [
        ("q", "How do I get the iOS <c:iosver> software update on my [device]?"),
    ],
    # --- shopping ----------------------------------------------------------------------------
    ("shopping", "return an item to [company]"): [
        ("q", "I bought something from [company] that I don't want. How do I send it back?"),
    ],
    ("shopping", "Is the [device] worth buying in <year:2020-2025>?"): [
        ("q", "should I still get a [device] in <year:2020-2025> or is it outdated?"),
    ],
    ("shopping", "a good gift for a <n:3-16> year old"): [
        ("q", "present ideas for a kid turning <n:3-16>?"),
        ("q", "My nephew is <n:3-16>. What should I buy him for his birthday?"),
    ],
    ("shopping", "the return policy of [company]"): [
        ("q", "how many days do I have to bring stuff back to [company]?"),
    ],
    ("shopping", "wash a [fabric] sweater {by hand|in the machine}"): [
        ("q", "Can I clean my [fabric] jumper {in the sink|in the washer} without ruining it?"),
    ],
    # --- home --------------------------------------------------------------------------------
    ("home", "get red wine out of a [fabric] carpet"): [
        ("q", "Spilled merlot on my [fabric] rug, how do I lift the stain?"),
    ],
    ("home", "unclog a kitchen sink {with|without} chemicals"): [
        ("q", "My kitchen drain is blocked. How do I clear it {using a drain cleaner|naturally, no harsh products}?"),
    ],
    ("home", "paint a room {with|without} primer"): [
        ("q", "Can I put new colour on my walls {after an undercoat|straight away with no undercoat}?"),
    ],
    ("home", "(fix/repair) a leaking tap"): [
        ("q", "my faucet keeps dripping, what do I do?"),
        ("q", "How do I stop a dripping faucet myself?"),
    ],
    ("home", "get rid of mould in the bathroom"): [
        ("q", "Black spots keep growing on my shower ceiling. How do I clean them off for good?"),
    ],
    ("home", "the best way to organize a small kitchen"): [
        ("q", "My galley kitchen has almost no cupboard space. How can I store everything?"),
    ],
    # --- education ---------------------------------------------------------------------------
    ("education", "learn [language] {with|without} an app"): [
        ("q", "Can I pick up [language] {using Duolingo or similar|with no phone apps at all}?"),
    ],
    ("education", "the fastest way to learn [subject]"): [
        ("q", "I need to get up to speed on [subject] quickly. Where do I start?"),
    ],
    ("education", "(study/prepare) for a [subject] exam in <n:2-14> days"): [
        ("q", "[subject] test in <n:2-14> days and I haven't started revising. Help!"),
    ],
    ("education", "good books for learning [subject]"): [
        ("q", "reading list for a [subject] beginner?"),
        ("q", "Which textbooks would you recommend to someone teaching themselves [subject]?"),
    ],
    # --- work --------------------------------------------------------------------------------
    ("work", "{accept|decline,turn down} a job offer politely"): [
        ("q", "How do I tell a recruiter {yes to|no thanks to} the position without sounding awkward?"),
    ],
    ("work", "prepare for a [job] interview"): [
        ("q", "I have an interview for a [job] role next week. What should I expect and practise?"),
        ("q", "[job] interview prep"),
    ],
    ("work", "deal with a coworker who takes credit for my work"): [
        ("q", "Someone on my team keeps presenting my ideas as theirs. What should I do?"),
    ],
    ("work", "the average salary of a [job] in [city]"): [
        ("q", "How much does a [job] typically earn in [city]?"),
        ("q", "[job] pay in [city]?"),
    ],
    ("work", "switch careers from [job#1] to [job#2]"): [
        ("q", "I've been a [job#1] for years and want to become a [job#2]. How do I make the jump?"),
    ],
}
# fmt: on
"""More wordings per task, keyed by (domain, the task's text in ``gen_tasks.TASKS``)."""
