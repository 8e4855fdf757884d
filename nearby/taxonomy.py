"""The category taxonomy of the fake profiles, and how a profile draws from it.

The taxonomy is a list of *families* (``developers``, ``healthcare``,
``agriculture``, ...), each with an ordered list of *specialties*
(``python-developer``, ``nurse``, ``beekeeper``, ...). Every slug, family or
specialty, is a category of its own, with one Redis index: 56 families and
983 specialties, 1,039 categories in all.

A profile draws, with the random generator that owns it:

1. one family, with probability proportional to its :attr:`Family.weight`
   times the pull of the place it lives in (see below);
2. 0, 1 or 2 distinct specialties of that family, in the proportions of
   :data:`SPECIALTY_COUNT_WEIGHTS`; within a family the specialty of rank
   ``r`` (0 for the first listed) weighs ``1 / (r + 1) ** ZIPF_EXPONENT``, so
   the list is written most common first and its end is a long tail.

So every profile has 1 to 3 categories, the family first, and a job title:
its first specialty's, or the family's when it has none.

Places come in three sizes (:data:`PLACE_SIZES`: towns, cities,
metropolises, told apart by the loader from the population). A family's
:attr:`Family.urbanity` says where its people live: in a place of size index
``i`` (0, 1 or 2) its weight is multiplied by
``URBANITY_RATIO ** (urbanity * (i - 1))``. Performers and journalists
(urbanity 2) crowd into the large cities, farmers and miners (-2) spread thin
over small towns; nurses and teachers (0) follow the people, their share
moving only as the others make room.

At 5,000,000 profiles this gives categories of about 1,300 to 160,000
members, half of them above about 4,300: the families hold 30,000 to
160,000 each, the first specialties of the large ones tens of thousands, the
tails of the small ones about a thousand. ``python load_data.py --stats``
measures what a database holds.

Draws use cumulative weights and a binary search, so their cost grows with
the logarithm of a list, not its length.
"""

import bisect
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from nearby.category import is_category

SPECIALTY_COUNT_WEIGHTS = (15, 50, 35)
"""Relative weights of a profile having 0, 1 and 2 specialties."""

ZIPF_EXPONENT = 0.8
"""Exponent of the rank weights of the specialties within a family."""

PLACE_SIZES = ("town", "city", "metropolis")
"""Sizes of places, smallest first; the loader passes their index to draws."""

URBANITY_RATIO = 2.0
"""How much one step of place size multiplies a family's weight, per unit of
urbanity."""


@dataclass(frozen=True, slots=True)
class Family:
    """A family of categories: its own slug, a job title, its specialties.

    ``weight`` is relative to the other families; ``specialties`` go most
    common first. ``urbanity`` (default 0, from -2 to 2) pulls the family
    toward large places when positive and toward small ones when negative.
    """

    slug: str
    title: str
    weight: float
    specialties: tuple[str, ...]
    urbanity: int = 0


def _specialties(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FAMILIES = (
    Family(
        "developers",
        "Software developer",
        3,
        _specialties(
            """
            python-developer javascript-developer java-developer typescript-developer
            csharp-developer php-developer go-developer cpp-developer ruby-developer
            rust-developer kotlin-developer swift-developer scala-developer
            elixir-developer c-developer dart-developer r-developer perl-developer
            haskell-developer clojure-developer erlang-developer fsharp-developer
            ocaml-developer lua-developer julia-developer cobol-developer
            fortran-developer zig-developer objective-c-developer groovy-developer
            """
        ),
        urbanity=1,
    ),
    Family(
        "web-developers",
        "Web developer",
        2,
        _specialties(
            """
            frontend-developer backend-developer fullstack-developer react-developer
            nodejs-developer angular-developer vue-developer django-developer
            wordpress-developer dotnet-developer spring-developer laravel-developer
            rails-developer nextjs-developer shopify-developer drupal-developer
            symfony-developer svelte-developer flask-developer fastapi-developer
            magento-developer graphql-developer webflow-developer ember-developer
            web-accessibility-specialist
            """
        ),
        urbanity=1,
    ),
    Family(
        "mobile-developers",
        "Mobile developer",
        0.9,
        _specialties(
            """
            android-developer ios-developer flutter-developer react-native-developer
            mobile-qa-engineer xamarin-developer ionic-developer mobile-architect
            kotlin-multiplatform-developer watchos-developer app-store-optimizer
            mobile-ui-developer
            """
        ),
        urbanity=1,
    ),
    Family(
        "data",
        "Data specialist",
        1.8,
        _specialties(
            """
            data-analyst data-engineer data-scientist machine-learning-engineer
            bi-developer database-administrator statistician analytics-engineer
            data-architect mlops-engineer nlp-engineer computer-vision-engineer
            etl-developer data-steward research-scientist-ai quantitative-analyst
            data-visualization-specialist sql-developer spark-developer
            big-data-engineer prompt-engineer ai-ethicist
            """
        ),
        urbanity=1,
    ),
    Family(
        "devops",
        "DevOps engineer",
        1.6,
        _specialties(
            """
            cloud-engineer site-reliability-engineer platform-engineer
            kubernetes-engineer network-engineer release-engineer aws-engineer
            azure-engineer gcp-engineer infrastructure-engineer build-engineer
            linux-engineer terraform-engineer observability-engineer cloud-architect
            solutions-architect storage-engineer virtualization-engineer ci-cd-engineer
            devsecops-engineer finops-analyst
            """
        ),
        urbanity=1,
    ),
    Family(
        "security",
        "Security specialist",
        0.9,
        _specialties(
            """
            security-engineer security-analyst penetration-tester security-architect
            soc-analyst incident-responder threat-hunter malware-analyst
            forensic-analyst cryptographer identity-engineer
            application-security-engineer cloud-security-engineer security-auditor ciso
            grc-analyst red-team-operator vulnerability-researcher
            """
        ),
        urbanity=1,
    ),
    Family(
        "it-support",
        "IT support specialist",
        2.2,
        _specialties(
            """
            help-desk-technician system-administrator desktop-support-technician
            it-technician network-administrator it-manager field-service-technician
            service-desk-analyst windows-administrator it-asset-manager
            telecom-technician computer-repair-technician av-technician it-trainer
            erp-consultant sap-consultant salesforce-administrator
            sharepoint-administrator crm-administrator technical-support-engineer
            """
        ),
        urbanity=0,
    ),
    Family(
        "quality-assurance",
        "QA engineer",
        1.1,
        _specialties(
            """
            qa-engineer test-automation-engineer manual-tester performance-tester
            qa-manager sdet accessibility-tester game-tester test-analyst
            usability-tester localization-tester
            """
        ),
        urbanity=1,
    ),
    Family(
        "product",
        "Product professional",
        1.3,
        _specialties(
            """
            product-manager project-manager product-owner scrum-master agile-coach
            program-manager technical-product-manager delivery-manager
            engineering-manager cto technical-writer business-analyst product-analyst
            release-manager growth-manager chief-product-officer
            """
        ),
        urbanity=1,
    ),
    Family(
        "games",
        "Game developer",
        0.7,
        _specialties(
            """
            game-programmer level-designer game-artist technical-artist
            narrative-designer gameplay-engineer game-producer game-animator
            sound-designer-games esports-coach esports-player game-economy-designer
            vfx-artist-games
            """
        ),
        urbanity=1,
    ),
    Family(
        "designers",
        "Designer",
        1.8,
        _specialties(
            """
            ux-designer graphic-designer ui-designer product-designer interior-designer
            motion-designer fashion-designer game-designer web-designer brand-designer
            illustrator industrial-designer ux-researcher packaging-designer
            type-designer textile-designer jewelry-designer furniture-designer
            exhibition-designer lighting-designer service-designer
            design-system-designer visual-designer
            """
        ),
        urbanity=1,
    ),
    Family(
        "marketing",
        "Marketer",
        2.2,
        _specialties(
            """
            digital-marketer content-marketer social-media-manager seo-specialist
            brand-manager copywriter pr-specialist marketing-manager email-marketer
            performance-marketer community-manager marketing-analyst growth-marketer
            product-marketer event-marketer influencer-manager sem-specialist
            affiliate-manager market-researcher media-buyer crm-marketer trade-marketer
            """
        ),
        urbanity=1,
    ),
    Family(
        "sales",
        "Salesperson",
        3.1,
        _specialties(
            """
            sales-representative account-executive retail-sales-associate sales-manager
            business-developer real-estate-agent inside-sales-representative
            key-account-manager sales-engineer pre-sales-consultant territory-manager
            customer-success-manager car-salesperson medical-sales-representative
            insurance-agent telemarketer sales-director channel-manager merchandiser
            procurement-specialist buyer purchasing-manager export-manager
            """
        ),
        urbanity=0,
    ),
    Family(
        "finance",
        "Finance professional",
        2.4,
        _specialties(
            """
            accountant financial-analyst auditor bookkeeper tax-advisor
            financial-planner controller payroll-specialist treasurer actuary cfo
            credit-analyst investment-analyst fund-manager risk-analyst
            forensic-accountant budget-analyst accounts-payable-clerk
            accounts-receivable-clerk cost-accountant internal-auditor
            management-accountant equity-research-analyst financial-modeler
            """
        ),
        urbanity=1,
    ),
    Family(
        "banking",
        "Banker",
        1.4,
        _specialties(
            """
            bank-teller loan-officer relationship-manager investment-banker
            branch-manager mortgage-advisor private-banker compliance-analyst trader
            portfolio-manager wealth-manager credit-officer
            anti-money-laundering-analyst bank-operations-specialist stockbroker
            venture-capitalist private-equity-associate fx-dealer
            """
        ),
        urbanity=1,
    ),
    Family(
        "insurance",
        "Insurance professional",
        1,
        _specialties(
            """
            insurance-underwriter claims-adjuster insurance-broker loss-adjuster
            claims-handler reinsurance-analyst pension-advisor insurance-risk-surveyor
            benefits-consultant
            """
        ),
        urbanity=0,
    ),
    Family(
        "legal",
        "Legal professional",
        1.4,
        _specialties(
            """
            lawyer paralegal compliance-officer legal-counsel notary judge
            legal-secretary barrister solicitor patent-attorney immigration-lawyer
            family-lawyer criminal-lawyer corporate-lawyer tax-lawyer court-clerk
            mediator legal-translator data-protection-officer contract-manager
            employment-lawyer intellectual-property-lawyer
            """
        ),
        urbanity=1,
    ),
    Family(
        "consulting",
        "Consultant",
        1.2,
        _specialties(
            """
            management-consultant strategy-consultant it-consultant business-consultant
            operations-consultant change-manager process-improvement-specialist
            lean-consultant sustainability-consultant esg-analyst interim-manager
            policy-advisor economist
            """
        ),
        urbanity=1,
    ),
    Family(
        "human-resources",
        "HR professional",
        1.6,
        _specialties(
            """
            recruiter hr-generalist hr-manager talent-acquisition-specialist
            hr-business-partner compensation-analyst learning-and-development-specialist
            payroll-administrator hr-coordinator executive-search-consultant
            employee-relations-specialist diversity-officer organizational-psychologist
            career-coach workforce-planner onboarding-specialist
            """
        ),
        urbanity=0,
    ),
    Family(
        "administration",
        "Office administrator",
        2.9,
        _specialties(
            """
            office-manager administrative-assistant executive-assistant receptionist
            data-entry-clerk secretary office-clerk personal-assistant
            document-controller records-manager mailroom-clerk facilities-coordinator
            virtual-assistant medical-secretary school-administrator operations-manager
            general-manager ceo chief-operating-officer business-owner
            """
        ),
        urbanity=0,
    ),
    Family(
        "customer-service",
        "Customer service agent",
        2.3,
        _specialties(
            """
            customer-service-representative call-center-agent
            customer-support-specialist technical-support-agent
            customer-experience-manager complaints-handler chat-support-agent
            client-services-coordinator reservations-agent concierge
            """
        ),
        urbanity=0,
    ),
    Family(
        "healthcare",
        "Healthcare worker",
        3,
        _specialties(
            """
            general-practitioner pharmacist physiotherapist dentist midwife paramedic
            psychologist radiologist veterinarian optometrist dietitian
            occupational-therapist speech-therapist chiropractor podiatrist audiologist
            dental-hygienist dental-assistant medical-assistant phlebotomist
            radiographer sonographer orthodontist hospital-porter care-coordinator
            """
        ),
        urbanity=0,
    ),
    Family(
        "nursing",
        "Nurse",
        2.7,
        _specialties(
            """
            nurse registered-nurse nurse-practitioner icu-nurse pediatric-nurse
            psychiatric-nurse surgical-nurse emergency-nurse community-nurse
            school-nurse oncology-nurse neonatal-nurse nurse-anesthetist home-care-nurse
            geriatric-nurse nursing-assistant charge-nurse nurse-educator
            infection-control-nurse
            """
        ),
        urbanity=0,
    ),
    Family(
        "physicians",
        "Physician",
        1.8,
        _specialties(
            """
            cardiologist dermatologist pediatrician surgeon anesthesiologist
            psychiatrist neurologist oncologist gynecologist ophthalmologist
            orthopedic-surgeon endocrinologist gastroenterologist urologist nephrologist
            pulmonologist rheumatologist emergency-physician hematologist pathologist
            neurosurgeon plastic-surgeon cardiothoracic-surgeon ent-specialist
            geriatrician sports-medicine-physician infectious-disease-specialist
            allergist
            """
        ),
        urbanity=1,
    ),
    Family(
        "therapy",
        "Therapist",
        1.3,
        _specialties(
            """
            massage-therapist counselor psychotherapist family-therapist art-therapist
            music-therapist respiratory-therapist addiction-counselor osteopath
            acupuncturist hypnotherapist play-therapist grief-counselor behavior-analyst
            """
        ),
        urbanity=0,
    ),
    Family(
        "pharmacy-and-lab",
        "Laboratory professional",
        1.1,
        _specialties(
            """
            pharmacy-technician lab-technician biomedical-scientist
            clinical-research-associate medical-laboratory-scientist cytologist
            microbiologist histotechnologist clinical-trial-manager
            pharmacovigilance-specialist regulatory-affairs-specialist
            quality-control-analyst
            """
        ),
        urbanity=0,
    ),
    Family(
        "veterinary",
        "Animal care worker",
        0.7,
        _specialties(
            """
            veterinary-nurse dog-groomer animal-trainer zookeeper farrier pet-sitter
            dog-walker animal-shelter-worker equine-vet wildlife-rehabilitator
            kennel-assistant
            """
        ),
        urbanity=-1,
    ),
    Family(
        "social-care",
        "Social care worker",
        1.8,
        _specialties(
            """
            social-worker care-worker support-worker youth-worker caregiver case-manager
            community-worker housing-officer probation-officer elderly-care-assistant
            disability-support-worker child-protection-officer refugee-caseworker
            outreach-worker family-support-worker
            """
        ),
        urbanity=0,
    ),
    Family(
        "education",
        "Educator",
        3,
        _specialties(
            """
            primary-teacher secondary-teacher university-lecturer language-teacher tutor
            special-needs-teacher music-teacher math-teacher science-teacher
            english-teacher history-teacher art-teacher physical-education-teacher
            kindergarten-teacher teaching-assistant school-principal driving-instructor
            esl-teacher chemistry-teacher physics-teacher biology-teacher
            computer-science-teacher geography-teacher dance-teacher yoga-teacher
            school-counselor librarian
            """
        ),
        urbanity=0,
    ),
    Family(
        "research",
        "Researcher",
        1.2,
        _specialties(
            """
            postdoctoral-researcher phd-student research-assistant professor lab-manager
            principal-investigator research-engineer archivist museum-curator historian
            anthropologist sociologist political-scientist linguist philosopher
            archaeologist
            """
        ),
        urbanity=1,
    ),
    Family(
        "science",
        "Scientist",
        1.1,
        _specialties(
            """
            chemist physicist biologist geologist meteorologist astronomer ecologist
            marine-biologist environmental-scientist geneticist biochemist
            neuroscientist mathematician oceanographer hydrologist seismologist
            volcanologist materials-scientist botanist zoologist epidemiologist
            """
        ),
        urbanity=1,
    ),
    Family(
        "engineering",
        "Engineer",
        2.5,
        _specialties(
            """
            mechanical-engineer civil-engineer electrical-engineer structural-engineer
            chemical-engineer industrial-engineer aerospace-engineer biomedical-engineer
            environmental-engineer petroleum-engineer electronics-engineer
            automotive-engineer robotics-engineer embedded-engineer hardware-engineer
            firmware-engineer process-engineer manufacturing-engineer quality-engineer
            geotechnical-engineer transportation-engineer water-engineer
            acoustic-engineer nuclear-engineer rf-engineer fpga-engineer test-engineer
            cad-technician drafter
            """
        ),
        urbanity=0,
    ),
    Family(
        "construction",
        "Construction worker",
        2.9,
        _specialties(
            """
            construction-worker site-manager architect quantity-surveyor
            construction-manager building-inspector land-surveyor scaffolder bricklayer
            concrete-finisher crane-operator heavy-equipment-operator demolition-worker
            tiler plasterer glazier drywall-installer landscape-architect urban-planner
            project-engineer-construction estimator steel-fixer road-worker
            insulation-installer
            """
        ),
        urbanity=0,
    ),
    Family(
        "trades",
        "Tradesperson",
        3,
        _specialties(
            """
            electrician plumber carpenter mechanic welder painter-decorator roofer
            hvac-technician mason locksmith joiner cabinet-maker upholsterer gas-fitter
            solar-installer elevator-technician appliance-repair-technician handyman
            flooring-installer sheet-metal-worker pipefitter boilermaker
            auto-body-technician motorcycle-mechanic diesel-mechanic bicycle-mechanic
            blacksmith stonemason
            """
        ),
        urbanity=0,
    ),
    Family(
        "manufacturing",
        "Production worker",
        2.7,
        _specialties(
            """
            machine-operator assembly-worker production-supervisor cnc-machinist
            quality-inspector toolmaker factory-worker maintenance-technician
            packaging-operator line-leader plant-manager forklift-operator
            injection-molding-technician printer-operator textile-worker seamstress
            tailor shoemaker furniture-maker glassblower metal-fabricator
            chemical-plant-operator food-production-worker brewer winemaker
            """
        ),
        urbanity=-1,
    ),
    Family(
        "energy",
        "Energy worker",
        1.1,
        _specialties(
            """
            wind-turbine-technician power-plant-operator lineworker energy-analyst
            solar-engineer nuclear-technician oil-rig-worker pipeline-operator
            substation-technician energy-auditor grid-engineer water-treatment-operator
            """
        ),
        urbanity=-1,
    ),
    Family(
        "logistics",
        "Logistics worker",
        2.7,
        _specialties(
            """
            truck-driver warehouse-operative courier dispatcher supply-chain-planner
            delivery-driver logistics-coordinator inventory-controller picker-packer
            freight-forwarder customs-broker fleet-manager warehouse-manager
            shipping-clerk import-export-coordinator demand-planner route-planner
            postal-worker
            """
        ),
        urbanity=0,
    ),
    Family(
        "transport",
        "Transport worker",
        2.3,
        _specialties(
            """
            bus-driver taxi-driver train-driver airline-pilot flight-attendant
            air-traffic-controller ride-share-driver tram-driver aircraft-mechanic
            railway-signaller station-agent ground-handler baggage-handler chauffeur
            ambulance-driver driving-examiner traffic-warden parking-attendant
            transit-planner
            """
        ),
        urbanity=0,
    ),
    Family(
        "hospitality",
        "Hospitality worker",
        2.7,
        _specialties(
            """
            chef waiter barista bartender hotel-receptionist event-planner sommelier
            hotel-manager housekeeper restaurant-manager host tour-guide travel-agent
            cruise-staff wedding-planner catering-manager room-attendant night-auditor
            banquet-server
            """
        ),
        urbanity=0,
    ),
    Family(
        "culinary",
        "Cook",
        2.1,
        _specialties(
            """
            line-cook sous-chef pastry-chef baker butcher fishmonger kitchen-porter
            pizzaiolo sushi-chef private-chef cheesemaker chocolatier
            food-truck-operator caterer confectioner prep-cook head-chef
            """
        ),
        urbanity=0,
    ),
    Family(
        "retail",
        "Retail worker",
        3,
        _specialties(
            """
            cashier store-manager shelf-stocker visual-merchandiser shop-assistant
            florist bookseller jeweler optician-retail pharmacy-assistant deli-clerk
            grocery-clerk stock-controller loss-prevention-officer personal-shopper
            e-commerce-manager antique-dealer
            """
        ),
        urbanity=0,
    ),
    Family(
        "beauty-and-wellness",
        "Beauty professional",
        1.4,
        _specialties(
            """
            hairdresser barber beautician nail-technician makeup-artist esthetician
            tattoo-artist spa-therapist cosmetologist lash-technician wellness-coach
            image-consultant
            """
        ),
        urbanity=0,
    ),
    Family(
        "fitness-and-sports",
        "Sports professional",
        1.3,
        _specialties(
            """
            personal-trainer fitness-instructor sports-coach pilates-instructor
            swimming-instructor football-coach athlete referee lifeguard ski-instructor
            climbing-instructor martial-arts-instructor golf-professional tennis-coach
            sports-physiotherapist sports-scientist
            """
        ),
        urbanity=0,
    ),
    Family(
        "performing-arts",
        "Performing artist",
        0.9,
        _specialties(
            """
            actor musician singer dancer composer conductor music-producer dj
            stage-manager theater-director comedian choreographer session-musician
            opera-singer circus-performer magician voice-actor sound-engineer
            lighting-technician
            """
        ),
        urbanity=2,
    ),
    Family(
        "media",
        "Media professional",
        1.1,
        _specialties(
            """
            journalist editor news-reporter broadcaster radio-presenter podcaster
            news-anchor photojournalist columnist sub-editor publisher literary-agent
            content-creator youtuber fact-checker media-planner
            """
        ),
        urbanity=2,
    ),
    Family(
        "writing-and-translation",
        "Writer",
        0.9,
        _specialties(
            """
            translator interpreter novelist technical-author proofreader ghostwriter
            screenwriter speechwriter grant-writer poet blogger subtitler
            localization-specialist sign-language-interpreter
            """
        ),
        urbanity=1,
    ),
    Family(
        "film-and-photography",
        "Film and photo professional",
        0.9,
        _specialties(
            """
            photographer videographer film-director cinematographer film-editor animator
            vfx-artist colorist camera-operator producer casting-director set-designer
            costume-designer location-scout gaffer drone-pilot wedding-photographer
            """
        ),
        urbanity=2,
    ),
    Family(
        "agriculture",
        "Agricultural worker",
        1.5,
        _specialties(
            """
            farmer farm-worker agronomist dairy-farmer livestock-farmer vineyard-worker
            horticulturist gardener greenhouse-worker beekeeper poultry-farmer
            crop-scientist agricultural-engineer tractor-driver shepherd orchardist
            rice-farmer tea-picker coffee-farmer organic-farmer irrigation-technician
            """
        ),
        urbanity=-2,
    ),
    Family(
        "forestry-and-fishing",
        "Forestry or fishing worker",
        0.6,
        _specialties(
            """
            fisherman forester logger park-ranger fish-farmer tree-surgeon arborist
            gamekeeper hunting-guide sawmill-worker wildland-firefighter
            """
        ),
        urbanity=-2,
    ),
    Family(
        "mining",
        "Mining worker",
        0.35,
        _specialties(
            """
            miner mining-engineer quarry-worker drilling-technician blaster
            mine-surveyor mineral-processing-operator geophysicist
            """
        ),
        urbanity=-2,
    ),
    Family(
        "public-sector",
        "Public servant",
        2.2,
        _specialties(
            """
            civil-servant police-officer diplomat city-planner tax-inspector
            customs-officer postmaster public-health-officer election-officer
            policy-analyst town-clerk prison-officer immigration-officer
            environmental-health-officer statistician-government military-officer
            soldier intelligence-analyst
            """
        ),
        urbanity=0,
    ),
    Family(
        "emergency-services",
        "Emergency worker",
        1.3,
        _specialties(
            """
            firefighter emt dispatcher-emergency search-and-rescue-technician
            coast-guard lifeboat-crew disaster-relief-coordinator security-guard
            bodyguard private-investigator
            """
        ),
        urbanity=0,
    ),
    Family(
        "real-estate",
        "Real estate professional",
        1.1,
        _specialties(
            """
            property-manager letting-agent real-estate-appraiser property-developer
            facilities-manager building-manager home-inspector leasing-consultant
            """
        ),
        urbanity=1,
    ),
    Family(
        "maritime",
        "Maritime worker",
        0.5,
        _specialties(
            """
            sailor ship-captain marine-engineer deckhand harbor-master dock-worker
            yacht-crew naval-architect marine-surveyor
            """
        ),
        urbanity=-1,
    ),
    Family(
        "facilities",
        "Facilities worker",
        2.2,
        _specialties(
            """
            cleaner janitor caretaker window-cleaner pest-control-technician
            groundskeeper maintenance-worker laundry-worker waste-collector
            recycling-operative chimney-sweep pool-technician
            """
        ),
        urbanity=0,
    ),
    Family(
        "childcare",
        "Childcare worker",
        1.3,
        _specialties(
            """
            nanny childminder au-pair nursery-nurse daycare-worker babysitter
            after-school-coordinator early-years-practitioner
            """
        ),
        urbanity=0,
    ),
)
"""Every family; the weights are relative, the specialties most common first."""

WORD_TITLES = {
    "ai": "AI",
    "android": "Android",
    "angular": "Angular",
    "av": "AV",
    "aws": "AWS",
    "azure": "Azure",
    "bi": "BI",
    "c": "C",
    "cad": "CAD",
    "ceo": "CEO",
    "cfo": "CFO",
    "ciso": "CISO",
    "clojure": "Clojure",
    "cnc": "CNC",
    "cobol": "COBOL",
    "cpp": "C++",
    "crm": "CRM",
    "csharp": "C#",
    "cto": "CTO",
    "dart": "Dart",
    "devops": "DevOps",
    "devsecops": "DevSecOps",
    "dj": "DJ",
    "django": "Django",
    "dotnet": ".NET",
    "drupal": "Drupal",
    "elixir": "Elixir",
    "ember": "Ember",
    "emt": "EMT",
    "english": "English",
    "ent": "ENT",
    "erlang": "Erlang",
    "erp": "ERP",
    "esg": "ESG",
    "esl": "ESL",
    "etl": "ETL",
    "fastapi": "FastAPI",
    "finops": "FinOps",
    "flask": "Flask",
    "flutter": "Flutter",
    "fortran": "Fortran",
    "fpga": "FPGA",
    "fsharp": "F#",
    "fx": "FX",
    "gcp": "GCP",
    "go": "Go",
    "graphql": "GraphQL",
    "grc": "GRC",
    "groovy": "Groovy",
    "haskell": "Haskell",
    "hr": "HR",
    "hvac": "HVAC",
    "icu": "ICU",
    "ionic": "Ionic",
    "ios": "iOS",
    "it": "IT",
    "java": "Java",
    "javascript": "JavaScript",
    "julia": "Julia",
    "kotlin": "Kotlin",
    "kubernetes": "Kubernetes",
    "laravel": "Laravel",
    "linux": "Linux",
    "lua": "Lua",
    "magento": "Magento",
    "mlops": "MLOps",
    "nextjs": "Next.js",
    "nlp": "NLP",
    "nodejs": "Node.js",
    "ocaml": "OCaml",
    "perl": "Perl",
    "phd": "PhD",
    "php": "PHP",
    "pilates": "Pilates",
    "pr": "PR",
    "python": "Python",
    "qa": "QA",
    "r": "R",
    "rails": "Rails",
    "react": "React",
    "rf": "RF",
    "ruby": "Ruby",
    "rust": "Rust",
    "salesforce": "Salesforce",
    "sap": "SAP",
    "scala": "Scala",
    "sdet": "SDET",
    "sem": "SEM",
    "seo": "SEO",
    "sharepoint": "SharePoint",
    "shopify": "Shopify",
    "soc": "SOC",
    "spark": "Spark",
    "spring": "Spring",
    "sql": "SQL",
    "svelte": "Svelte",
    "swift": "Swift",
    "symfony": "Symfony",
    "terraform": "Terraform",
    "typescript": "TypeScript",
    "ui": "UI",
    "ux": "UX",
    "vfx": "VFX",
    "vue": "Vue",
    "watchos": "watchOS",
    "webflow": "Webflow",
    "wordpress": "WordPress",
    "xamarin": "Xamarin",
    "youtuber": "YouTuber",
    "zig": "Zig",
}
"""How a word of a slug is spelt in a job title when not in lower case."""

TITLE_OVERRIDES = {
    "anti-money-laundering-analyst": "Anti-money-laundering analyst",
    "ci-cd-engineer": "CI/CD engineer",
    "e-commerce-manager": "E-commerce manager",
    "kotlin-multiplatform-developer": "Kotlin Multiplatform developer",
    "objective-c-developer": "Objective-C developer",
    "painter-decorator": "Painter and decorator",
    "picker-packer": "Picker and packer",
    "pre-sales-consultant": "Pre-sales consultant",
    "import-export-coordinator": "Import-export coordinator",
    "ride-share-driver": "Ride-share driver",
    "react-native-developer": "React Native developer",
    "sound-designer-games": "Sound designer for games",
    "vfx-artist-games": "VFX artist for games",
    "optician-retail": "Dispensing optician",
    "dispatcher-emergency": "Emergency dispatcher",
    "statistician-government": "Government statistician",
    "project-engineer-construction": "Construction project engineer",
    "research-scientist-ai": "AI research scientist",
}
"""Job titles that no word-by-word spelling gives."""

_FAMILY_TITLES = {family.slug: family.title for family in FAMILIES}


def title(slug: str) -> str:
    """Return the job title of a specialty or family slug.

    A family's title is its own; a specialty's comes from
    :data:`TITLE_OVERRIDES` or, by default, from the words of the slug
    spelt as :data:`WORD_TITLES` says, or else in lower case with the
    first one capitalised (``ux-researcher`` becomes ``UX researcher``,
    ``dog-groomer`` becomes ``Dog groomer``).
    """
    if slug in _FAMILY_TITLES:
        return _FAMILY_TITLES[slug]
    if slug in TITLE_OVERRIDES:
        return TITLE_OVERRIDES[slug]
    first, *rest = slug.split("-")
    words = [WORD_TITLES.get(first, first.capitalize())]
    words.extend(WORD_TITLES.get(word, word) for word in rest)
    return " ".join(words)


def categories() -> tuple[str, ...]:
    """Return every category slug of the taxonomy, each family then its specialties."""
    return tuple(
        itertools.chain.from_iterable(
            (family.slug, *family.specialties) for family in FAMILIES
        )
    )


class Sampler:
    """Draws the categories and the job title of one profile at a time.

    Build it once and call :meth:`draw` with the random generator that owns
    the profile, so the draw is reproducible. The family, the number of
    specialties and the first one are drawn together, from one table per
    place size of their joint probabilities (a few thousand entries): one
    binary search instead of three, for the same distribution as drawing
    them one after the other.

    Raises:
        ValueError: a slug is not a valid category or appears twice, a
            weight is not positive, or an urbanity is outside [-2, 2].
    """

    def __init__(self, families: tuple[Family, ...] = FAMILIES):
        _check(families)
        self._families = families
        self._specialty_cumulative = [
            _cumulative(
                1 / (rank + 1) ** ZIPF_EXPONENT
                for rank in range(len(family.specialties))
            )
            for family in families
        ]
        self._joint = [self._joint_table(size) for size in range(len(PLACE_SIZES))]

    def _joint_table(self, size: int) -> tuple[tuple[list[float], float], list]:
        # Entries (family index, first rank or None, whether a second
        # specialty follows, the categories so far, the job title), with
        # their probabilities in places of size index ``size``.
        weights: list[float] = []
        entries: list[tuple[int, int | None, bool, list[str], str]] = []
        for index, family in enumerate(self._families):
            pull = URBANITY_RATIO ** (family.urbanity * (size - 1))
            family_weight = family.weight * pull
            count_weights = _count_weights(len(family.specialties))
            rank_weights = [
                1 / (rank + 1) ** ZIPF_EXPONENT
                for rank in range(len(family.specialties))
            ]
            ranks_total = sum(rank_weights)

            weights.append(family_weight * count_weights[0])
            entries.append((index, None, False, [family.slug], family.title))
            for rank, specialty in enumerate(family.specialties):
                share = rank_weights[rank] / ranks_total
                for wanted in (1, 2):
                    weights.append(family_weight * count_weights[wanted] * share)
                    entries.append(
                        (
                            index,
                            rank,
                            wanted == 2,
                            [family.slug, specialty],
                            title(specialty),
                        )
                    )

        drawable = [i for i, weight in enumerate(weights) if weight > 0]
        return (
            _cumulative(weights[i] for i in drawable),
            [entries[i] for i in drawable],
        )

    def draw(self, rng: random.Random, place_size: int = 1) -> tuple[list[str], str]:
        """Return ``(categories, job_title)`` of one profile.

        ``place_size`` is the index in :data:`PLACE_SIZES` of the place the
        profile lives in (default 1, a city, where urbanity changes nothing).
        ``categories`` holds the family and then 0 to 2 distinct specialties
        of it; the title is that of the first specialty, or the family's.
        """
        cumulative, joint = self._joint[place_size]
        family, first, second, categories, job_title = joint[_pick(cumulative, rng)]
        categories = list(categories)
        if second:
            cumulative = self._specialty_cumulative[family]
            rank = first
            while rank == first:
                rank = _pick(cumulative, rng)
            categories.append(self._families[family].specialties[rank])
        return categories, job_title


def _count_weights(specialties: int) -> list[float]:
    # Shares of 0, 1 and 2 specialties; a family with fewer specialties
    # than drawn gives the profile all it has.
    shares = [0.0] * len(SPECIALTY_COUNT_WEIGHTS)
    total = sum(SPECIALTY_COUNT_WEIGHTS)
    for wanted, weight in enumerate(SPECIALTY_COUNT_WEIGHTS):
        shares[min(wanted, specialties)] += weight / total
    return shares


def _cumulative(weights: Iterable[float]) -> tuple[list[float], float]:
    # The running sums and their total, the last sum made infinite: a draw
    # can round up to the total itself, and the last index must take it.
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1] if cumulative else 0.0
    if cumulative:
        cumulative[-1] = math.inf
    return cumulative, total


def _pick(cumulative: tuple[list[float], float], rng: random.Random) -> int:
    sums, total = cumulative
    return bisect.bisect_right(sums, rng.random() * total)


def _check(families: tuple[Family, ...]) -> None:
    seen: set[str] = set()
    for family in families:
        if family.weight <= 0:
            raise ValueError(f"family {family.slug!r} has weight {family.weight}")
        if not -2 <= family.urbanity <= 2:
            raise ValueError(
                f"family {family.slug!r} has urbanity {family.urbanity}, not in [-2, 2]"
            )
        for slug in (family.slug, *family.specialties):
            if not is_category(slug):
                raise ValueError(f"{slug!r} is not a valid category slug")
            if slug in seen:
                raise ValueError(f"{slug!r} appears twice in the taxonomy")
            seen.add(slug)
